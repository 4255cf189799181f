// Keys derived for a stated purpose: the port of crypto/kdf.py.
//
// Every secret is HKDF-SHA256 (RFC 5869) of a parent secret with its own purpose label:
// info = "peerbeam/v1 " | purpose | 0x00 | context. The NUL ends the label, so a label can never
// run into its context. The salt is empty, which RFC 5869 §2.2 turns into HashLen zero bytes.

import { hkdf, hmac, sha256 } from '../vendor/noble.js';
import { concatBytes, hexToBytes, readU64be, u64be, utf8Encode } from './bytes.js';

export const SECRET_LEN = 32;
export const RENDEZVOUS_PERIOD = 86400; // one UTC day, in seconds
export const LAN_EPOCH_PERIOD = 600; // ten minutes
export const LAN_TAG_LEN = 8;
export const CODE_DIGITS = 6;

const INFO_PREFIX = utf8Encode('peerbeam/v1 ');
const ASCII_LABEL = /^[\x01-\x7f]+$/;

/** @param {string} purpose @param {Uint8Array} context */
function info(purpose, context) {
  if (typeof purpose !== 'string' || !ASCII_LABEL.test(purpose)) {
    throw new RangeError('a purpose is a non-empty ASCII label without NUL');
  }
  return concatBytes(INFO_PREFIX, utf8Encode(purpose), new Uint8Array([0]), context);
}

/** @param {Uint8Array} value @param {string} what */
function requireSecret(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== SECRET_LEN) {
    throw new RangeError(`${what} is ${SECRET_LEN} bytes`);
  }
}

/**
 * HKDF-SHA256(secret, salt = empty, info(purpose, context), length).
 * @param {Uint8Array} secret
 * @param {string} purpose
 * @param {number} [length]
 * @param {Uint8Array} [context]
 * @returns {Uint8Array}
 */
export function deriveKey(secret, purpose, length = 32, context = new Uint8Array(0)) {
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new RangeError('cannot derive from an empty secret');
  }
  return hkdf(sha256, secret, undefined, info(purpose, context), length);
}

/** The Noise_NKpsk0 psk from the QR's 32 random bytes (DESIGN "Pairing" step 4). */
export function pairingPsk(/** @type {Uint8Array} */ qrSecret) {
  requireSecret(qrSecret, 'the QR secret');
  return deriveKey(qrSecret, 'pairing psk');
}

/** The long-term secret of a pairing, from the pairing handshake's final chaining key. */
export function pairSecret(/** @type {Uint8Array} */ chainingKey) {
  requireSecret(chainingKey, 'a chaining key');
  return deriveKey(chainingKey, 'pair');
}

/** The Noise_KKpsk0 psk for reconnecting paired devices. */
export function reconnectPsk(/** @type {Uint8Array} */ secret) {
  requireSecret(secret, 'a pair secret');
  return deriveKey(secret, 'reconnect psk');
}

/**
 * What both peers present to the server to be joined; changes every UTC day.
 * @param {Uint8Array} secret the pair secret
 * @param {number | bigint} day see dayOf()
 */
export function rendezvousId(secret, day) {
  requireSecret(secret, 'a pair secret');
  return deriveKey(secret, 'rid', 32, u64be(day));
}

/**
 * The mDNS TXT tag HMAC(pair_secret, "peerbeam/v1 lan" | 0x00 | epoch u64 BE)[:8]. 64 bits
 * are enough for a hint: the KK handshake authenticates afterwards.
 * @param {Uint8Array} secret the pair secret
 * @param {number | bigint} epoch see lanEpochOf()
 */
export function lanTag(secret, epoch) {
  requireSecret(secret, 'a pair secret');
  return hmac(sha256, secret, info('lan', u64be(epoch))).slice(0, LAN_TAG_LEN);
}

/**
 * 8 bytes naming one file sent within one pairing: the same file offered again after a
 * reconnect gets the same id, which is how the receiver finds its partial file and resumes.
 * @param {Uint8Array} secret the pair secret
 * @param {string} sha256Hex the file's sha-256, 64 hex digits
 * @param {number} size in bytes
 * @param {string} name the file name offered
 */
export function transferId(secret, sha256Hex, size, name) {
  requireSecret(secret, 'a pair secret');
  const context = concatBytes(hexToBytes(sha256Hex), u64be(size), utf8Encode(name));
  return deriveKey(secret, 'transfer id', 8, context);
}

/**
 * Six decimal digits both users may compare. 64 derived bits mod 10**6: the bias is at most one
 * part in ~1.8e13, far below anything a person comparing digits could exploit.
 * @param {Uint8Array} handshakeHash
 * @returns {string}
 */
export function comparisonCode(handshakeHash) {
  if (!(handshakeHash instanceof Uint8Array) || handshakeHash.length === 0) {
    throw new RangeError('empty handshake hash');
  }
  const value = readU64be(deriveKey(handshakeHash, 'comparison code', 8), 0);
  return (value % 10n ** BigInt(CODE_DIGITS)).toString().padStart(CODE_DIGITS, '0');
}

/**
 * Python's int(a // b) for floats (CPython float_floor_div): the quotient is computed from the
 * exact remainder, so it never rounds up past an integer the way Math.floor(a / b) can for
 * large values. Both sides must agree on the day and epoch numbers to meet.
 * @param {number} a
 * @param {number} b a positive period
 */
function floorDivide(a, b) {
  if (!Number.isFinite(a)) throw new RangeError('a time is a finite number of seconds');
  const mod = a % b; // fmod: exact
  let div = (a - mod) / b;
  if (mod !== 0 && mod < 0) div -= 1;
  if (div === 0) return 0;
  let floor = Math.floor(div);
  if (div - floor > 0.5) floor += 1;
  return floor;
}

/** The UTC day number of a POSIX time in seconds. @param {number} now */
export function dayOf(now) {
  return floorDivide(now, RENDEZVOUS_PERIOD);
}

/** The ten-minute epoch number of a POSIX time in seconds. @param {number} now */
export function lanEpochOf(now) {
  return floorDivide(now, LAN_EPOCH_PERIOD);
}
