// Byte strings: hex, the two base64 spellings peerbeam uses, big-endian integers, UTF-8.
//
// Two base64 spellings, on purpose (RFC 4648):
// * base64url without padding (§5) on links and tokens, decoded strictly: one value has exactly
//   one spelling, so a link cannot be altered without changing what it means (crypto/keys.py);
// * standard base64 with padding (§4) for `bytes` fields inside JSON messages, because that is
//   what msgspec writes and reads (signaling/schema.py).

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL = /^[A-Za-z0-9_-]*$/;
const B64STD = /^[A-Za-z0-9+/]*={0,2}$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const U64_LIMIT = 1n << 64n;
// With the u flag, a surrogate pair is one code point: only unpaired halves match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** @param {Uint8Array} bytes @returns {string} lower-case hex */
export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** @param {string} hex an even number of hex digits, either case @returns {Uint8Array} */
export function hexToBytes(hex) {
  if (typeof hex !== 'string' || !HEX.test(hex)) throw new TypeError('not a hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {Uint8Array} bytes @param {string} alphabet */
function encode64(bytes, alphabet) {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += alphabet[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Decodes unpadded text of a valid alphabet; stray low bits in the last character are ignored. */
function decode64(text, alphabet) {
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let pos = 0;
  for (const ch of text) {
    acc = ((acc << 6) | alphabet.indexOf(ch)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** @param {Uint8Array} bytes @returns {string} base64url without padding (RFC 4648 §5) */
export function b64urlEncode(bytes) {
  return encode64(bytes, URL_SAFE);
}

/**
 * Strict unpadded base64url, the port of crypto/keys.py b64u_decode. `maxLen` caps the
 * encoded length and is checked before any work, so hostile input costs nothing.
 * @param {string} text
 * @param {number} maxLen
 * @returns {Uint8Array | null} null unless `text` is the one canonical spelling of some bytes
 */
export function b64urlDecode(text, maxLen) {
  if (text.length > maxLen || text.length % 4 === 1 || !B64URL.test(text)) return null;
  const bytes = decode64(text, URL_SAFE);
  return b64urlEncode(bytes) === text ? bytes : null;
}

/** @param {Uint8Array} bytes @returns {string} standard base64 with padding (RFC 4648 §4) */
export function base64Encode(bytes) {
  const text = encode64(bytes, STANDARD);
  return text + '='.repeat((4 - (text.length % 4)) % 4);
}

/**
 * Standard padded base64 as msgspec reads it: length a multiple of 4, padding only at the end.
 * Like msgspec (and Python's base64), stray low bits in the last character are accepted.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base64Decode(text) {
  if (text.length % 4 !== 0 || !B64STD.test(text)) return null;
  return decode64(text.replace(/=+$/, ''), STANDARD);
}

/** @param {...Uint8Array} parts @returns {Uint8Array} */
export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const part of parts) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

/** @param {number} value 0..65535 @returns {Uint8Array} 2 bytes, big-endian */
export function u16be(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError('not a u16');
  return new Uint8Array([value >> 8, value & 0xff]);
}

/** @param {number | bigint} value an integer in 0..2**64-1 @returns {Uint8Array} 8 bytes, BE */
export function u64be(value) {
  if (typeof value === 'number' && !Number.isInteger(value)) throw new RangeError('not an integer');
  const big = BigInt(value);
  if (big < 0n || big >= U64_LIMIT) throw new RangeError('not an unsigned 64-bit number');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big);
  return out;
}

/** @param {Uint8Array} bytes @param {number} offset @returns {bigint} */
export function readU64be(bytes, offset) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset);
}

/**
 * UTF-8 of a well-formed string. A lone surrogate throws (TypeError) instead of silently
 * becoming U+FFFD: Python cannot encode one either, so both sides refuse the same strings.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8Encode(text) {
  if (!isWellFormed(text)) throw new TypeError('a string with a lone surrogate has no UTF-8 form');
  return utf8Encoder.encode(text);
}

/** No lone surrogate: the string has a UTF-8 form (and a Python str form that encodes). */
export function isWellFormed(/** @type {string} */ text) {
  return !LONE_SURROGATE.test(text);
}

/**
 * Strict UTF-8: invalid sequences throw (TypeError) instead of becoming U+FFFD, and a leading
 * BOM is kept (and then refused by JSON.parse), as msgspec does.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function utf8Decode(bytes) {
  return utf8Decoder.decode(bytes);
}

/** Python's len(str): code points, not UTF-16 units. @param {string} text */
export function codePointLength(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Constant-time comparison (the role of Python's hmac.compare_digest): the time taken does not
 * reveal where two MACs first differ.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
