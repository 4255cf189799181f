// What a phone says to the signaling server and what it hears back: the ClientMessage and
// ServerMessage unions of signaling/schema.py, as far as a phone uses them (JSON text frames on
// /v1/ws).
//
// The server is trusted with routing only: everything that matters for security travels
// inside Noise envelopes (`relay.data`). Its messages are still checked field by field, so a
// broken or hostile server gets a clear error instead of an exception deep in the app.

import { base64Decode, utf8Decode } from './bytes.js';
import { MAX_FRAME_BYTES, codecFor, fits } from './codec.js';
import { ERROR_CODES } from './channel.js';
import { PeerbeamError } from './errors.js';

const V = { name: 'v', kind: 'literal', values: [1], required: false, default: 1 };
const TOKEN = { name: 'token', kind: 'str', min_length: 1, max_length: 256, required: true };
const NAME = { kind: 'str', min_length: 1, max_length: 64, required: true };
export const MAX_RELAY_BYTES = 46 * 1024;

/** Device -> server, the messages a phone sends. @type {Readonly<Record<string, import('./codec.js').FieldSpec[]>>} */
export const CLIENT_SCHEMA = Object.freeze({
  'pair.join': [TOKEN, { name: 'name', ...NAME }, V],
  'pair.peek': [TOKEN, V],
  rendezvous: [{ name: 'rid', kind: 'str', min_length: 1, max_length: 64, pattern: '^[A-Za-z0-9_-]+$', required: true }, V],
  relay: [{ name: 'data', kind: 'bytes', max_length: MAX_RELAY_BYTES, required: true }, V],
});

const ICE_SERVERS = { name: 'ice_servers', kind: 'ice_servers', required: true };

/** Server -> device, the messages a phone can be sent. @type {Readonly<Record<string, Array<import('./codec.js').FieldSpec | typeof ICE_SERVERS>>>} */
export const SERVER_SCHEMA = Object.freeze({
  'pair.info': [{ name: 'name', ...NAME }, { name: 'expires_at', kind: 'float', required: true }, V],
  'pair.joined': [{ name: 'peer_name', ...NAME }, ICE_SERVERS, V],
  'rendezvous.waiting': [V],
  'rendezvous.matched': [ICE_SERVERS, V],
  'peer.left': [V],
  relay: [{ name: 'data', kind: 'bytes', max_length: MAX_RELAY_BYTES, required: true }, V],
  error: [
    { name: 'code', kind: 'literal', values: [...ERROR_CODES], required: true },
    { name: 'message', kind: 'str', max_length: 1024, required: true },
    V,
  ],
});

const client = codecFor(CLIENT_SCHEMA, 'client message');

/**
 * @typedef {{urls: string[], username: string | null, credential: string | null}} IceServer
 *   W3C RTCIceServer as the server sends it (signaling/schema.py IceServer).
 */

/** @param {{t: string, [field: string]: unknown}} message @returns {string} the JSON text frame */
export function encodeClient(message) {
  return utf8Decode(client.encode(message));
}

/** @param {unknown} value @returns {IceServer[] | null} */
function iceServers(value) {
  if (!Array.isArray(value) || value.length > 16) return null;
  const out = [];
  for (const server of value) {
    if (typeof server !== 'object' || server === null || Array.isArray(server)) return null;
    if (Object.keys(server).some((key) => !['urls', 'username', 'credential'].includes(key))) return null;
    const { urls, username = null, credential = null } = server;
    if (!Array.isArray(urls) || urls.length > 16 || !urls.every((u) => typeof u === 'string' && u.length <= 1024)) {
      return null;
    }
    if (![username, credential].every((s) => s === null || (typeof s === 'string' && s.length <= 1024))) return null;
    out.push(Object.freeze({ urls: [...urls], username, credential }));
  }
  return out;
}

/**
 * Parse one text frame from the server. Throws PeerbeamError "bad_json" or "bad_message".
 * @param {string} text
 * @returns {Readonly<{t: string, [field: string]: unknown}>}
 */
export function decodeServer(text) {
  if (typeof text !== 'string' || text.length > MAX_FRAME_BYTES) throw new PeerbeamError('frame_too_large');
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PeerbeamError('bad_json');
  }
  const misfit = (/** @type {string} */ why) =>
    new PeerbeamError('bad_message', `The server sent a message this app does not understand (${why}).`);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw misfit('not an object');
  const fields = typeof parsed.t === 'string' && Object.hasOwn(SERVER_SCHEMA, parsed.t) ? SERVER_SCHEMA[parsed.t] : null;
  if (fields === null) throw misfit('unknown tag');
  for (const key of Object.keys(parsed)) {
    if (key !== 't' && !fields.some((f) => f.name === key)) throw misfit(`unknown field ${key}`);
  }
  /** @type {{t: string, [field: string]: unknown}} */
  const message = { t: parsed.t };
  for (const field of fields) {
    if (!Object.hasOwn(parsed, field.name)) {
      if (field.required) throw misfit(`missing ${field.name}`);
      message[field.name] = /** @type {{default?: unknown}} */ (field).default;
      continue;
    }
    let value = parsed[field.name];
    if (field.kind === 'ice_servers') {
      value = iceServers(value);
      if (value === null) throw misfit('bad ice_servers');
    } else {
      if (field.kind === 'bytes' && typeof value === 'string') value = base64Decode(value) ?? undefined;
      if (!fits(/** @type {import('./codec.js').FieldSpec} */ (field), value)) throw misfit(`bad ${field.name}`);
    }
    message[field.name] = value;
  }
  return Object.freeze(message);
}
