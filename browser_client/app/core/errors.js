// The one error class of the protocol core.
//
// A PeerbeamError always means "what came from outside was not acceptable, or did not happen":
// a scanned link, a handshake or transport message, a data frame, a refusal by the server, a
// peer that never answered. Its `code` is stable and is the same string the
// Python side uses (signaling/schema.py ErrorCode, crypto/errors.py), so the UI and the wire
// agree; its `message` is the sentence to show people. Misuse by the calling code (a key of
// the wrong length, writing out of turn) throws the built-in TypeError, RangeError or Error
// instead, as the Python side raises ValueError or RuntimeError: a bug, not an attack.

/** The default sentence for each code, as the Python side words it. */
const SENTENCES = Object.freeze({
  interception:
    'The secure handshake failed: the connection may have been intercepted. Nothing was sent. ' +
    'Pair again with a fresh QR code, on a network you trust.',
  bad_link: 'This pairing link is not valid.',
  bad_frame: 'The other device sent a data frame that is not valid.',
  frame_too_large: 'The message is larger than 64 KiB.',
  bad_json: 'The message is not valid JSON.',
  bad_message: 'The message does not fit the schema.',
  // The server's refusals (signaling/errors.py) and the session's failures (peer_agent).
  bad_token: 'This pairing code is not valid.',
  token_expired: 'This pairing code has expired: scan the new one.',
  token_used: 'This pairing code has already been used: scan the new one.',
  room_full: 'Another device is already connected here.',
  rate_limited: 'Too many requests: wait a minute and try again.',
  auth_timeout: 'Nothing was paired or joined in time: the connection is closed.',
  not_in_room: 'This connection has not paired or joined yet.',
  already_bound: 'This connection is already paired or joined; open a new one.',
  peer_gone: 'The other device is not connected.',
  pairing_rejected: 'The pairing was declined.',
  unknown_device: 'The other device no longer has a pairing with this one. Pair again with a new QR code.',
  connect_timeout: 'No network path to the other device worked in time.',
  relay_unavailable: 'No direct path worked and the relay server could not be used.',
  server_unreachable: 'The signaling server cannot be reached.',
  internal: 'Something failed inside the app; try again.',
});

/**
 * @typedef {'interception'|'bad_link'|'bad_frame'|'frame_too_large'|'bad_json'|'bad_message'|'bad_token'|
 *   'token_expired'|'token_used'|'room_full'|'rate_limited'|'auth_timeout'|'not_in_room'|'already_bound'|
 *   'peer_gone'|'pairing_rejected'|'unknown_device'|'connect_timeout'|'relay_unavailable'|
 *   'server_unreachable'|'internal'} ErrorCode
 */

export class PeerbeamError extends Error {
  /**
   * @param {ErrorCode} code stable, machine-readable
   * @param {string} [message] a sentence for people; defaults to the code's usual sentence
   */
  constructor(code, message) {
    if (!Object.hasOwn(SENTENCES, code)) throw new TypeError(`unknown error code ${code}`);
    super(message ?? SENTENCES[code]);
    this.name = 'PeerbeamError';
    /** @type {ErrorCode} */
    this.code = code;
  }
}

/** Whether `code` is one this class knows (a server may send codes a phone never raises). */
export function isErrorCode(/** @type {unknown} */ code) {
  return typeof code === 'string' && Object.hasOwn(SENTENCES, code);
}
