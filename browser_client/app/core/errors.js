// The one error class of the protocol core.
//
// A PeerbeamError always means "what came from outside was not acceptable": a scanned link, a
// handshake or transport message, a data frame. Its `code` is stable and is the same string the
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
});

/**
 * @typedef {'interception'|'bad_link'|'bad_frame'|'frame_too_large'|'bad_json'|'bad_message'} ErrorCode
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
