// Binding the DTLS channel to the Noise handshake (DESIGN "Pairing" step 5): the port of
// crypto/binding.py.
//
// Fingerprints travel inside Noise transport messages, and once the data channel opens each side
// also proves, with a MAC keyed from the Noise chaining key, which fingerprints it saw. The
// receiver recomputes the MAC with the *sender's* role and view (the sender's local fingerprint
// is the receiver's remote one), so a relay that terminated DTLS on either side produces a
// mismatch and the channel closes before any application byte flows (RFC 8844, RFC 5056).

import { hmac, sha256 } from '../vendor/noble.js';
import { codePointLength, concatBytes, equalBytes, hexToBytes, u16be, utf8Encode } from './bytes.js';
import { PeerbeamError } from './errors.js';
import { deriveKey } from './kdf.js';

/** @typedef {'initiator' | 'responder'} Role */

const MAX_FINGERPRINT_CHARS = 200;
const LABEL = utf8Encode('peerbeam/v1 dtls binding\x00');
const MISMATCH = 'The secure channel does not match the handshake: the connection may have been intercepted.';
// Python's whitespace (str.isspace, and \s in its str patterns), spelled out: JavaScript's \s
// and trim() differ from it (they take U+FEFF, they leave U+001C-U+001F and U+0085).
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const STRIP = new RegExp(`^[${WS}]+|[${WS}]+$`, 'gu');
// Only sha-256 (RFC 8122 §5): one algorithm per side leaves no weaker hash to downgrade to. The
// u flag makes case-insensitive matching use Unicode case folding, as Python's re.IGNORECASE does
// (so U+017F LONG S matches "s" on both sides).
const FINGERPRINT = new RegExp(`^(?:sha-256[${WS}]+)?((?:[0-9a-f]{2}:){31}[0-9a-f]{2})$`, 'iu');

/**
 * "sha-256 AB:CD:..." or "ab:cd:..." -> "AB:CD:..." (exactly 32 bytes).
 * @param {string} value
 * @returns {string}
 */
export function normaliseFingerprint(value) {
  if (typeof value !== 'string' || codePointLength(value) > MAX_FINGERPRINT_CHARS) {
    throw new PeerbeamError('interception', MISMATCH);
  }
  const match = FINGERPRINT.exec(value.replace(STRIP, ''));
  if (match === null) throw new PeerbeamError('interception', MISMATCH);
  return match[1].toUpperCase();
}

/** @param {string} value */
function fingerprintBytes(value) {
  return hexToBytes(normaliseFingerprint(value).replaceAll(':', ''));
}

/** @param {Uint8Array} chainingKey @returns {Uint8Array} */
export function bindingKey(chainingKey) {
  return deriveKey(chainingKey, 'dtls binding');
}

/**
 * HMAC-SHA256 over label | role | handshake hash | local fp | remote fp, each with a 2-byte
 * big-endian length prefix, so no two different tuples produce the same bytes.
 * @param {Uint8Array} key
 * @param {Role} role
 * @param {Uint8Array} handshakeHash
 * @param {string} localFp
 * @param {string} remoteFp
 * @returns {Uint8Array}
 */
export function bindingMac(key, role, handshakeHash, localFp, remoteFp) {
  if (role !== 'initiator' && role !== 'responder') {
    throw new RangeError("role is 'initiator' or 'responder'");
  }
  const fields = [utf8Encode(role), handshakeHash, fingerprintBytes(localFp), fingerprintBytes(remoteFp)];
  const message = concatBytes(LABEL, ...fields.flatMap((f) => [u16be(f.length), f]));
  return hmac(sha256, key, message);
}

/**
 * Check the MAC the peer sent; `peerLocalFp` is the peer's own certificate (our remote one).
 * @param {Uint8Array} key
 * @param {Role} peerRole
 * @param {Uint8Array} handshakeHash
 * @param {string} peerLocalFp
 * @param {string} peerRemoteFp
 * @param {Uint8Array} mac
 */
export function verifyBinding(key, peerRole, handshakeHash, peerLocalFp, peerRemoteFp, mac) {
  const expected = bindingMac(key, peerRole, handshakeHash, peerLocalFp, peerRemoteFp);
  if (!equalBytes(expected, mac)) throw new PeerbeamError('interception', MISMATCH);
}
