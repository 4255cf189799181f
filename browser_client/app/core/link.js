// The QR pairing link (DESIGN "Pairing" step 2): the port of crypto/link.py parse_link.
//
// `https://<origin>/p#1.<token>.<s>.<pk_agent>`: the sealed token, the 32-byte QR secret and the
// agent's X25519 public key, all base64url without padding, in the fragment, which browsers
// never send to a server. `http://` is allowed for a signaling server on the LAN.
//
// Parsing is strict because the link arrives from a camera: one spelling per link, no userinfo,
// no query, nothing but `/p` as the path, every length checked before anything is decoded. The
// checks run in the same order as in Python, so both sides give the same sentence for the same
// bad link.

import { b64urlDecode, codePointLength } from './bytes.js';
import { PeerbeamError } from './errors.js';
import { urlsplit } from './urlsplit.js';

export const LINK_VERSION = '1';
export const LINK_PATH = '/p';
export const MAX_LINK_CHARS = 2048;
export const MAX_TOKEN_CHARS = 256; // crypto/tokens.py
const SECRET_LEN = 32;
const KEY_LEN = 32;
const B64_32 = 43; // unpadded base64url length of 32 bytes
// Printable ASCII without space: Python's urlsplit silently drops tabs and newlines; we refuse them.
const URL_CHARS = /^[\x21-\x7e]+$/;
const TOKEN_CHARS = /^[A-Za-z0-9_-]+$/;
// A DNS name or IPv4 address, or an IPv6 literal: no percent-escapes, no IDNA surprises.
const HOST = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|[0-9a-f:.]{2,45})$/;

const MALFORMED = 'This pairing link has a malformed address.';
const DAMAGED = 'This pairing link is damaged: scan it again.';

/**
 * @typedef {object} PairingLink
 * @property {string} origin scheme://host[:port], canonical (lower case, no default-port games)
 * @property {string} token the sealed pairing token, for `pair.join`
 * @property {Uint8Array} secret the 32-byte QR secret (the NKpsk0 psk comes from it)
 * @property {Uint8Array} agentKey the agent's 32-byte X25519 public key
 */

/** @param {string} message */
function bad(message) {
  return new PeerbeamError('bad_link', message);
}

/** The canonical origin of a split URL; throws unless it is a plain http(s) origin. */
function originOf(/** @type {import('./urlsplit.js').SplitUrl} */ parts) {
  if (parts.scheme !== 'http' && parts.scheme !== 'https') {
    throw bad('This pairing link must start with https:// (or http:// on a LAN).');
  }
  if (parts.hasUserinfo || !parts.hostname) throw bad(MALFORMED);
  let host = parts.hostname.toLowerCase();
  if (!HOST.test(host)) throw bad(MALFORMED);
  if (host.includes(':')) host = `[${host}]`; // IPv6 literal (RFC 3986 §3.2.2)
  return `${parts.scheme}://${host}${parts.port !== null ? `:${parts.port}` : ''}`;
}

/**
 * Parse a scanned pairing link. Throws PeerbeamError (code "bad_link", with a sentence for
 * people) and nothing else on bad input.
 * @param {string} url
 * @returns {Readonly<PairingLink>}
 */
export function parseLink(url) {
  // Lengths count code points, as Python does; 2 UTF-16 units at most per code point.
  if (typeof url !== 'string' || url.length > 2 * MAX_LINK_CHARS || codePointLength(url) > MAX_LINK_CHARS) {
    throw bad('This pairing link is too long.');
  }
  if (!URL_CHARS.test(url)) throw bad('This pairing link contains characters a link cannot have.');
  const parts = urlsplit(url);
  if (parts === null) throw bad(MALFORMED); // Python's urlsplit() or .port raised ValueError
  const origin = originOf(parts);
  if (parts.path !== LINK_PATH || parts.query || url.includes('?')) {
    throw bad('This is not a peerbeam pairing link.');
  }
  const fields = parts.fragment.split('.');
  if (fields.length !== 4 || fields[0] !== LINK_VERSION) {
    throw bad('This pairing link is not one this version understands: update peerbeam or scan again.');
  }
  const [, token, secretText, keyText] = fields;
  if (token.length > MAX_TOKEN_CHARS || !TOKEN_CHARS.test(token)) throw bad(DAMAGED);
  const secret = b64urlDecode(secretText, B64_32);
  const agentKey = b64urlDecode(keyText, B64_32);
  if (secret?.length !== SECRET_LEN || agentKey?.length !== KEY_LEN) throw bad(DAMAGED);
  return Object.freeze({ origin, token, secret, agentKey });
}
