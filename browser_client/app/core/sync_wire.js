// Page sync on the data channel (docs/SYNC.md "Wire"): one SyncDoc's y-protocols messages as
// `sync.update {doc, data, more}` chunks. Pure: time comes in as `nowMs`, messages go out through
// the `send` callback (the shell hands them to the channel's codec), nothing is scheduled here.
//
// A reassembled message is exactly what y-protocols writes behind y-websocket's outer type:
// varuint 0 (messageSync), then varuint 0|1|2 (step 1 | step 2 | update), then a varuint8array
// payload — the bytes of pycrdt's create_sync_message / handle_sync_message /
// create_update_message, so either side reads the other's.
//
// Public API:
//
//   new SyncLink({doc, sync, send, onPending?, coalesceMs = 50, resyncMs = 1000})
//        doc: the DocId; sync: a SyncDoc; send(message): one channel message object
//        {t: 'sync.update', doc, data: Uint8Array (≤ 32 KiB), more: boolean};
//        onPending(): called when a local change starts waiting for flush() (arm a timer then)
//   .start()              (re)starts on sync.open and every reconnect: sends step 1, forgets any
//                         partial message, queued updates (the handshake carries them) and "behind"
//   .receive(message, nowMs) -> null | {code, message}   one `sync.update`; an error is what the
//                         shell answers with a channel `error` (update_too_large, bad_update,
//                         unknown_doc); the link keeps working after it
//   .flush(nowMs) -> number            sends the queued local updates as one merged update if the
//                         last batch left ≥ coalesceMs ago; returns how many messages went out
//   .behind(nowMs)        the shell's rate limit dropped a sync.update of ours to read
//   .resyncDue(nowMs) -> boolean       ≥ resyncMs after the last drop: sends a fresh step 1
//   .nextDeadline() -> number | null   when flush() or resyncDue() has work (ms, same clock)
//   .synced               true once a step 2 from the peer was applied since start()
//   .close()              stops listening to the document

import { Y, decoding, encoding, syncProtocol } from '../vendor/yjs.js';
import { MAX_SYNC_CHUNK, MAX_SYNC_MESSAGE } from './channel.js';
import { SyncError } from './sync_doc.js';

export { MAX_SYNC_CHUNK, MAX_SYNC_MESSAGE };
export const COALESCE_MS = 50;
export const RESYNC_AFTER_MS = 1000;
/** y-websocket's outer message type for sync messages (y-protocols leaves the framing to it). */
const MESSAGE_SYNC = 0;
/** A merged batch stays well under MAX_SYNC_MESSAGE, so the peer never refuses our own updates. */
const MAX_BATCH_BYTES = 256 * 1024;
/** Queued updates are merged once this many wait (a long offline stretch stays one update). */
const MAX_QUEUED = 64;

/** @typedef {{t: 'sync.update', doc: string, data: Uint8Array, more: boolean}} SyncUpdateMessage */
/** @typedef {{code: 'update_too_large' | 'bad_update' | 'unknown_doc', message: string}} SyncFault */

export class SyncLink {
  /** @type {Uint8Array[]} chunks of the message being reassembled */
  #partial = [];
  #partialBytes = 0;
  /** Skipping the rest of a message already refused (too large, or cut by a drop). */
  #discarding = false;
  /** @type {Uint8Array[]} local updates waiting for flush() */
  #queued = [];
  /** @type {number | null} */
  #lastBatchAt = null;
  /** @type {number | null} */
  #behindAt = null;
  #started = false;
  #synced = false;
  /** @type {() => void} */
  #unsubscribe;

  /**
   * @param {object} options
   * @param {string} options.doc the session's DocId
   * @param {import('./sync_doc.js').SyncDoc} options.sync
   * @param {(message: SyncUpdateMessage) => void} options.send
   * @param {() => void} [options.onPending]
   * @param {number} [options.coalesceMs]
   * @param {number} [options.resyncMs]
   */
  constructor({ doc, sync, send, onPending = () => {}, coalesceMs = COALESCE_MS, resyncMs = RESYNC_AFTER_MS }) {
    this.docId = doc;
    this.sync = sync;
    this.send = send;
    this.coalesceMs = coalesceMs;
    this.resyncMs = resyncMs;
    this.#unsubscribe = sync.onLocalUpdate((update) => {
      // Before start() there is no peer: the handshake will carry this change.
      if (!this.#started) return;
      const wasEmpty = this.#queued.length === 0;
      this.#queued.push(update);
      if (this.#queued.length >= MAX_QUEUED) this.#queued = [Y.mergeUpdates(this.#queued)];
      if (wasEmpty) onPending();
    });
  }

  get synced() {
    return this.#synced;
  }

  start() {
    this.#started = true;
    this.#synced = false;
    this.#dropPartial(false);
    this.#queued = [];
    this.#behindAt = null;
    this.#sendStep1();
  }

  close() {
    this.#started = false;
    this.#unsubscribe();
    this.#queued = [];
    this.#dropPartial(false);
  }

  /**
   * One `sync.update` from the peer (decoded by channel.js, so `data` is 1..32 KiB).
   * @param {{t: string, doc: string, data: Uint8Array, more: boolean}} message
   * @param {number} _nowMs
   * @returns {SyncFault | null}
   */
  receive(message, _nowMs) {
    if (message.doc !== this.docId) {
      return { code: 'unknown_doc', message: 'A sync update arrived for a document that is not the open one.' };
    }
    if (this.#discarding) {
      this.#discarding = message.more;
      return null;
    }
    if (this.#partialBytes + message.data.length > MAX_SYNC_MESSAGE) {
      // The rest of this message is skipped too: its next chunk is not the start of a message.
      this.#dropPartial(message.more);
      return { code: 'update_too_large', message: 'A sync message was larger than 1 MiB: it was dropped.' };
    }
    this.#partial.push(message.data);
    this.#partialBytes += message.data.length;
    if (message.more) return null;
    const bytes = this.#partial.length === 1 ? this.#partial[0] : concat(this.#partial, this.#partialBytes);
    this.#dropPartial(false);
    let reply;
    try {
      reply = this.#read(bytes);
    } catch (err) {
      if (err instanceof SyncError) return { code: 'bad_update', message: err.message };
      // lib0's decoder throws plain errors on truncated or overlong input.
      return { code: 'bad_update', message: 'A sync message was damaged: it is not a y-protocols sync message.' };
    }
    if (reply !== null) this.#sendMessage(reply);
    return null;
  }

  /** @param {number} nowMs @returns {number} messages sent */
  flush(nowMs) {
    if (!this.#started || this.#queued.length === 0) return 0;
    if (this.#lastBatchAt !== null && nowMs - this.#lastBatchAt < this.coalesceMs) return 0;
    this.#lastBatchAt = nowMs;
    const queued = this.#queued;
    this.#queued = [];
    let sent = 0;
    // One merged update per batch, unless the changes are large: then several, each far below
    // the peer's 1 MiB cap (one operation's update is a few KiB at most).
    let group = [];
    let groupBytes = 0;
    for (const update of [...queued, null]) {
      if (update === null || (group.length > 0 && groupBytes + update.length > MAX_BATCH_BYTES)) {
        const encoder = encoding.createEncoder();
        encoding.writeVarUint(encoder, MESSAGE_SYNC);
        syncProtocol.writeUpdate(encoder, group.length === 1 ? group[0] : Y.mergeUpdates(group));
        sent += this.#sendMessage(encoding.toUint8Array(encoder));
        group = [];
        groupBytes = 0;
      }
      if (update !== null) {
        group.push(update);
        groupBytes += update.length;
      }
    }
    return sent;
  }

  /** A sync.update of this doc was dropped before it reached receive(). @param {number} nowMs */
  behind(nowMs) {
    this.#behindAt = nowMs;
    // A dropped chunk breaks the message it belonged to: what is held of it is useless, and so
    // is the rest of it. (If the drop was a message's last chunk, the next message is lost
    // too; the fresh step 1 below brings it back, as it brings back the dropped one.)
    if (this.#partial.length > 0) this.#dropPartial(true);
  }

  /** @param {number} nowMs @returns {boolean} whether a fresh step 1 went out */
  resyncDue(nowMs) {
    if (this.#behindAt === null || nowMs - this.#behindAt < this.resyncMs) return false;
    this.#behindAt = null;
    this.#sendStep1();
    return true;
  }

  /** @returns {number | null} */
  nextDeadline() {
    const deadlines = [];
    if (this.#started && this.#queued.length > 0) deadlines.push(this.#lastBatchAt === null ? 0 : this.#lastBatchAt + this.coalesceMs);
    if (this.#behindAt !== null) deadlines.push(this.#behindAt + this.resyncMs);
    return deadlines.length === 0 ? null : Math.min(...deadlines);
  }

  /**
   * Read one whole sync message; returns the reply to send (step 2 for a step 1), or null.
   * y-protocols' readSyncMessage would do the same but logs and swallows a failed update; here
   * the update is checked (SyncDoc.applyUpdate) and a failure reported to the peer.
   * @param {Uint8Array} bytes @returns {Uint8Array | null}
   */
  #read(bytes) {
    const decoder = decoding.createDecoder(bytes);
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) throw new SyncError('bad_update', 'A sync message had the wrong outer type.');
    const type = decoding.readVarUint(decoder);
    const payload = decoding.readVarUint8Array(decoder);
    if (decoding.hasContent(decoder)) throw new SyncError('bad_update', 'A sync message had bytes after its payload.');
    switch (type) {
      case syncProtocol.messageYjsSyncStep1: {
        const diff = this.sync.encodeDiff(payload);
        const encoder = encoding.createEncoder();
        encoding.writeVarUint(encoder, MESSAGE_SYNC);
        encoding.writeVarUint(encoder, syncProtocol.messageYjsSyncStep2);
        encoding.writeVarUint8Array(encoder, diff);
        return encoding.toUint8Array(encoder);
      }
      case syncProtocol.messageYjsSyncStep2:
        this.sync.applyUpdate(payload, 'remote');
        this.#synced = true;
        return null;
      case syncProtocol.messageYjsUpdate:
        this.sync.applyUpdate(payload, 'remote');
        return null;
      default:
        throw new SyncError('bad_update', 'A sync message had an unknown type.');
    }
  }

  #sendStep1() {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(encoder, this.sync.ydoc);
    this.#sendMessage(encoding.toUint8Array(encoder));
  }

  /** Cut one message into chunks of at most MAX_SYNC_CHUNK bytes. @param {Uint8Array} bytes @returns {number} */
  #sendMessage(bytes) {
    let count = 0;
    for (let at = 0; at < bytes.length; at += MAX_SYNC_CHUNK) {
      const end = Math.min(at + MAX_SYNC_CHUNK, bytes.length);
      this.send({ t: 'sync.update', doc: this.docId, data: bytes.slice(at, end), more: end < bytes.length });
      count += 1;
    }
    return count;
  }

  /** @param {boolean} discardRest whether the chunks still to come of this message are skipped */
  #dropPartial(discardRest) {
    this.#partial = [];
    this.#partialBytes = 0;
    this.#discarding = discardRest;
  }
}

/** @param {Uint8Array[]} parts @param {number} total */
function concat(parts, total) {
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
