// File transfers as pure state machines: the port of peer_agent/transfer.py, same messages,
// same states, same rules. Messages and frames in, events and messages out; no I/O, and
// `now` (milliseconds) passed in.
//
//     sender                         receiver
//     transfer.offer   ───────────▶  (the phone accepts from its paired PC; the PC asks its user)
//                      ◀───────────  transfer.accept {offset}
//     frames from offset ─────────▶  checked in order, hashed as they come (incremental sha-256)
//                      ◀───────────  transfer.progress          (throttled)
//                      ◀───────────  transfer.done              (sha-256 matched, kept)
//                                    or transfer.failed {code}
//     transfer.cancel  ◀──────────▶  from either side, until the last byte has left
//
// The channel is reliable and ordered (RFC 8831 §6.6): a frame at any offset but the next
// expected one is a protocol violation, never reordering, and a sender's cancel cannot
// overtake its own frames — once the receiver verified the last byte, the file is kept.

import { sha256 } from '../vendor/noble.js';
import { bytesToHex } from './bytes.js';
import { MAX_PAYLOAD_BYTES, encodeFrame } from './frames.js';

/** @typedef {'offered' | 'transferring' | 'sent' | 'verified' | 'completed' | 'rejected' | 'cancelled' | 'failed' | 'interrupted'} TransferState */
/**
 * @typedef {{type: 'accepted', id: string, offset: number}
 *   | {type: 'rejected', id: string, by: 'local' | 'peer', message: string}
 *   | {type: 'chunk', id: string, offset: number, data: Uint8Array}
 *   | {type: 'progress', id: string, done: number, size: number}
 *   | {type: 'verified', id: string}
 *   | {type: 'completed', id: string}
 *   | {type: 'cancelled', id: string, by: 'local' | 'peer', message: string}
 *   | {type: 'failed', id: string, by: 'local' | 'peer', code: string, message: string}
 *   | {type: 'interrupted', id: string, done: number}} TransferEvent
 */
/** @typedef {import('./channel.js').ChannelMessage} ChannelMessage */

const TERMINAL = new Set(['completed', 'rejected', 'cancelled', 'failed', 'interrupted']);
export const PROGRESS_INTERVAL_MS = 250;

class Transfer {
  /** @type {TransferState} */ state = 'offered';
  /** @type {ChannelMessage[]} */ #outbox = [];

  /** @param {string} id @param {number} size @param {number} done */
  constructor(id, size, done) {
    this.id = id;
    this.size = size;
    /** Bytes the receiver holds (what people are shown on both sides). */
    this.done = done;
  }

  get finished() {
    return TERMINAL.has(this.state);
  }

  /** @param {ChannelMessage} message */
  queue(message) {
    this.#outbox.push(message);
  }

  popMessages() {
    return this.#outbox.splice(0);
  }

  /**
   * A control message for this transfer. Anything the state table does not expect is a
   * protocol violation: the transfer fails and the peer is told.
   * @param {ChannelMessage} message @param {number} now @returns {TransferEvent[]}
   */
  receive(message, now) {
    if (this.finished) return []; // late messages after an end are normal: progress crossing a cancel
    const live = ['offered', 'transferring', 'sent'].includes(this.state);
    if (message.t === 'transfer.cancel' && live) {
      this.state = 'cancelled';
      return [{ type: 'cancelled', id: this.id, by: 'peer', message: /** @type {string} */ (message.message) }];
    }
    if (message.t === 'transfer.failed' && live) {
      this.state = 'failed';
      return [{ type: 'failed', id: this.id, by: 'peer', code: /** @type {string} */ (message.code), message: /** @type {string} */ (message.message) }];
    }
    const events = this.handle(message, now);
    if (events !== null) return events;
    return this.fail('bad_message', `Your PC sent ${message.t} while the transfer was ${this.state}.`);
  }

  /** @param {ChannelMessage} message @param {number} now @returns {TransferEvent[] | null} */
  handle(message, now) { // eslint-disable-line no-unused-vars
    return null;
  }

  /** Stop from this side; too late once every byte has left or been verified. @param {string} message @returns {TransferEvent[]} */
  cancel(message) {
    if (this.finished || this.state === 'sent' || this.state === 'verified') return [];
    this.state = 'cancelled';
    this.queue({ t: 'transfer.cancel', id: this.id, message });
    return [{ type: 'cancelled', id: this.id, by: 'local', message }];
  }

  /** A local fault, or a violation we detected: tell the peer, end here. @param {string} code @param {string} message @returns {TransferEvent[]} */
  fail(code, message) {
    if (this.finished) return [];
    this.state = 'failed';
    this.queue({ t: 'transfer.failed', id: this.id, code, message });
    return [{ type: 'failed', id: this.id, by: 'local', code, message }];
  }

  /** The channel is gone: nothing can be sent any more. @returns {TransferEvent[]} */
  interrupt() {
    if (this.finished) return [];
    this.state = 'interrupted';
    return [{ type: 'interrupted', id: this.id, done: this.done }];
  }
}

export class OutgoingTransfer extends Transfer {
  /**
   * @param {{id: string, name: string, size: number, sha256: string, mime?: string | null, chunkSize?: number}} file
   */
  constructor({ id, name, size, sha256: digest, mime = null, chunkSize = MAX_PAYLOAD_BYTES }) {
    super(id, size, 0);
    if (!(chunkSize > 0 && chunkSize <= MAX_PAYLOAD_BYTES)) throw new RangeError('chunk size out of range');
    this.chunkSize = chunkSize;
    this.sent = 0;
    this.offer = { t: 'transfer.offer', id, name, size, sha256: digest, mime };
    this.queue(this.offer);
  }

  /** [offset, length] of the next chunk to read, or null when there is nothing to send. */
  nextRead() {
    if (this.state !== 'transferring') return null;
    return [this.sent, Math.min(this.chunkSize, this.size - this.sent)];
  }

  /** Frame the chunk just read for nextRead(); moves to "sent" after the last one. @param {Uint8Array} data */
  encodeChunk(data) {
    const want = this.nextRead();
    if (want === null || data.length !== want[1]) throw new RangeError('encodeChunk() wants exactly the bytes nextRead() asked for');
    const frame = encodeFrame(this.id, this.sent, data);
    this.sent += data.length;
    if (this.sent === this.size) this.state = 'sent';
    return frame;
  }

  /** @param {ChannelMessage} message @returns {TransferEvent[] | null} */
  handle(message) {
    const offset = /** @type {number} */ (message.offset);
    const received = /** @type {number} */ (message.received);
    switch (`${this.state} ${message.t}`) {
      case 'offered transfer.accept':
        if (offset > this.size) return this.fail('bad_message', 'Your PC asked to resume beyond the end of the file.');
        this.sent = offset;
        this.done = offset;
        this.state = offset === this.size ? 'sent' : 'transferring';
        return [{ type: 'accepted', id: this.id, offset }];
      case 'offered transfer.reject':
        this.state = 'rejected';
        return [{ type: 'rejected', id: this.id, by: 'peer', message: /** @type {string} */ (message.message) }];
      case 'transferring transfer.progress':
      case 'sent transfer.progress':
        if (!(this.done <= received && received <= this.sent)) {
          return this.fail('bad_message', 'Your PC reported progress it cannot have made.');
        }
        this.done = received;
        return [{ type: 'progress', id: this.id, done: received, size: this.size }];
      case 'sent transfer.done':
        this.done = this.size;
        this.state = 'completed';
        return [{ type: 'completed', id: this.id }];
      default:
        return null;
    }
  }
}

export class IncomingTransfer extends Transfer {
  #digest = sha256.create();
  #progressAt;

  /** @param {ChannelMessage} offer a decoded transfer.offer @param {number} now */
  constructor(offer, now) {
    super(/** @type {string} */ (offer.id), /** @type {number} */ (offer.size), 0);
    this.offer = offer;
    this.#progressAt = now;
  }

  /** @returns {TransferEvent[]} */
  accept() {
    if (this.state !== 'offered') return [];
    this.state = 'transferring';
    this.queue({ t: 'transfer.accept', id: this.id, offset: this.done });
    return this.#checkComplete();
  }

  /** @param {string} message @returns {TransferEvent[]} */
  reject(message) {
    if (this.state !== 'offered') return [];
    this.state = 'rejected';
    this.queue({ t: 'transfer.reject', id: this.id, message });
    return [{ type: 'rejected', id: this.id, by: 'local', message }];
  }

  /** @param {import('./frames.js').DataFrame} frame @param {number} now @returns {TransferEvent[]} */
  receiveFrame(frame, now) {
    if (this.finished) return []; // frames in flight when we cancelled
    if (this.state !== 'transferring') return this.fail('bad_frame', 'Your PC sent data before the transfer was accepted.');
    if (frame.offset !== this.done) return this.fail('bad_frame', `Your PC sent data at offset ${frame.offset}, expected ${this.done}.`);
    if (frame.end > this.size) return this.fail('bad_frame', 'Your PC sent more bytes than it offered.');
    this.#digest.update(frame.payload);
    this.done = frame.end;
    /** @type {TransferEvent[]} */
    const events = [{ type: 'chunk', id: this.id, offset: frame.offset, data: frame.payload }];
    if (this.done === this.size || now - this.#progressAt >= PROGRESS_INTERVAL_MS) {
      this.#progressAt = now;
      this.queue({ t: 'transfer.progress', id: this.id, received: this.done });
      events.push({ type: 'progress', id: this.id, done: this.done, size: this.size });
    }
    return [...events, ...this.#checkComplete()];
  }

  /** The shell stored the verified file: say done. @returns {TransferEvent[]} */
  committed() {
    if (this.state !== 'verified') return [];
    this.state = 'completed';
    this.queue({ t: 'transfer.done', id: this.id });
    return [{ type: 'completed', id: this.id }];
  }

  /** @param {ChannelMessage} message @returns {TransferEvent[] | null} */
  handle(message) { // eslint-disable-line no-unused-vars
    return null; // only cancel and failed, handled for both directions
  }

  /** @returns {TransferEvent[]} */
  #checkComplete() {
    if (this.done < this.size) return [];
    if (bytesToHex(this.#digest.digest()) !== this.offer.sha256) {
      return this.fail('hash_mismatch', 'The file arrived damaged: its sha-256 does not match the offer.');
    }
    this.state = 'verified';
    return [{ type: 'verified', id: this.id }];
  }
}
