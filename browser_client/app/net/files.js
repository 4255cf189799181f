// Files both ways with the paired PC: the shell around core/transfer.js, the phone's half of
// peer_agent/files.py. Same messages, same frames, same transfer id (kdf transferId from the
// pair secret, the sha-256, the size and the name).
//
// Sending reads the file in 1 MiB slices (Blob.slice: never the whole file in memory), hashes
// it first (the offer carries the sha-256), then frames it from the accepted offset, paced by
// the channel's bufferedAmountLowThreshold (rtc_link.js writable()).
// Receiving writes each chunk to IndexedDB as it comes (store/received.js), hashes it
// incrementally, and offers the result as a download only once the sha-256 matched. A file
// offered by the paired PC is accepted at once: the user's own PC sent it (as KDE Connect does
// between paired devices); the phone user can still cancel it.

import { bytesToHex } from '../core/bytes.js';
import { PeerbeamError } from '../core/errors.js';
import { MAX_PAYLOAD_BYTES } from '../core/frames.js';
import { transferId } from '../core/kdf.js';
import { IncomingTransfer, OutgoingTransfer } from '../core/transfer.js';
import { sha256 } from '../vendor/noble.js';

const READ_BLOCK = 1024 * 1024;
const MAX_NAME = 255;

/**
 * What the screen shows of one transfer.
 * @typedef {object} TransferView
 * @property {string} id
 * @property {'in' | 'out'} direction
 * @property {string} name
 * @property {number} size
 * @property {number} done bytes the receiver holds
 * @property {'hashing' | 'offered' | 'transferring' | 'completed' | 'cancelled' | 'failed' | 'rejected' | 'interrupted'} state
 * @property {string} [message]
 * @property {Blob} [blob] a received file, once verified
 */

/** A file name the PC's safe_name will take: one line, no path, at most 255 characters. @param {string} name */
function offeredName(name) {
  const base = name.split(/[/\\]/).pop()?.replace(/[\x00-\x1f\x7f]/g, '').trim() || 'file';
  return [...base].slice(-MAX_NAME).join('');
}

export class Files {
  /** @type {Map<string, IncomingTransfer | OutgoingTransfer>} */ #live = new Map();
  /** @type {Map<string, import('../store/received.js').PartFile>} */ #parts = new Map();
  /** @type {Map<string, TransferView>} */ #views = new Map();
  /** @type {Map<string, (event: import('../core/transfer.js').TransferEvent) => void>} */ #senders = new Map();

  /**
   * @param {object} options
   * @param {import('./rtc_link.js').RtcLink} options.link
   * @param {Uint8Array} options.pairSecret
   * @param {string} options.peerName
   * @param {import('../store/received.js').Received} options.received
   * @param {(view: TransferView) => void} options.onUpdate
   */
  constructor({ link, pairSecret, peerName, received, onUpdate }) {
    this.link = link;
    this.pairSecret = pairSecret;
    this.peerName = peerName;
    this.received = received;
    this.onUpdate = onUpdate;
  }

  /** @param {TransferView} view @param {Partial<TransferView>} change */
  #show(view, change) {
    Object.assign(view, change);
    this.#views.set(view.id, view);
    this.onUpdate({ ...view });
  }

  #flush(/** @type {IncomingTransfer | OutgoingTransfer} */ transfer) {
    for (const message of transfer.popMessages()) {
      try {
        this.link.send(message);
      } catch (err) {
        if (!(err instanceof PeerbeamError)) throw err;
      }
    }
  }

  // -- sending ------------------------------------------------------------------------------

  /**
   * Offer a file (or a text as a .txt file: the share target) and send it; resolves once the
   * PC verified it, rejects with why it did not.
   * @param {Blob} blob @param {string} name
   */
  async send(blob, name) {
    const fileName = offeredName(name);
    /** @type {TransferView} */
    const view = { id: `hash-${crypto.getRandomValues(new Uint32Array(1))[0]}`, direction: 'out', name: fileName,
      size: blob.size, done: 0, state: 'hashing' };
    this.#show(view, {});
    const hash = sha256.create();
    for (let at = 0; at < blob.size; at += READ_BLOCK) {
      hash.update(new Uint8Array(await blob.slice(at, at + READ_BLOCK).arrayBuffer()));
    }
    const digest = bytesToHex(hash.digest());
    const id = bytesToHex(transferId(this.pairSecret, digest, blob.size, fileName));
    this.#views.delete(view.id);
    view.id = id;
    if (this.#live.has(id)) {
      this.#show(view, { state: 'failed', message: `${fileName} is already on its way.` });
      throw new PeerbeamError('bad_message', `${fileName} is already on its way.`);
    }
    const transfer = new OutgoingTransfer({ id, name: fileName, size: blob.size, sha256: digest,
      mime: /^[\w.+-]+\/[\w.+-]+$/.test(blob.type) ? blob.type : null, chunkSize: MAX_PAYLOAD_BYTES });
    this.#live.set(id, transfer);
    this.#show(view, { state: 'offered', message: `Waiting for ${this.peerName} to accept…` });
    const ended = new Promise((resolve, reject) => {
      this.#senders.set(id, (event) => {
        if (event.type === 'accepted') {
          this.#show(view, { state: 'transferring', done: event.offset, message: '' });
          this.#pump(transfer, blob);
        } else if (event.type === 'progress') {
          this.#show(view, { done: event.done });
        } else if (event.type === 'completed') {
          this.#show(view, { state: 'completed', done: view.size, message: `Saved on ${this.peerName}` });
          resolve(undefined);
        } else if (event.type === 'cancelled' || event.type === 'failed' || event.type === 'rejected' || event.type === 'interrupted') {
          const message = this.#sentence(event);
          this.#show(view, { state: event.type, message });
          reject(new PeerbeamError(event.type === 'failed' ? /** @type {any} */ (event).code : 'peer_gone', message));
        }
      });
    });
    ended.catch(() => {});
    this.#flush(transfer);
    try {
      await ended;
    } finally {
      this.#live.delete(id);
      this.#senders.delete(id);
    }
  }

  /** @param {OutgoingTransfer} transfer @param {Blob} blob */
  async #pump(transfer, blob) {
    let block = new Uint8Array(0);
    let blockAt = 0;
    let want;
    try {
      while ((want = transfer.nextRead()) !== null) {
        const [offset, length] = want;
        if (offset < blockAt || offset + length > blockAt + block.length) {
          blockAt = offset;
          block = new Uint8Array(await blob.slice(offset, offset + Math.max(READ_BLOCK, length)).arrayBuffer());
          if (transfer.nextRead()?.[0] !== offset) continue; // cancelled while reading
        }
        this.link.sendFrame(transfer.encodeChunk(block.subarray(offset - blockAt, offset - blockAt + length)));
        await this.link.writable();
      }
    } catch (err) {
      if (!(err instanceof PeerbeamError)) throw err; // the channel is gone: interruptAll tells
    }
  }

  // -- receiving ----------------------------------------------------------------------------

  /** @param {import('../core/channel.js').ChannelMessage} message */
  onMessage(message) {
    const id = /** @type {string} */ (message.id);
    if (message.t === 'transfer.offer') {
      if (!this.#live.has(id)) this.#receive(message);
      return;
    }
    const transfer = this.#live.get(id);
    if (transfer === undefined) return; // late messages after an end
    this.#handle(transfer, transfer.receive(message, performance.now()));
  }

  /** @param {import('../core/channel.js').ChannelMessage} offer */
  async #receive(offer) {
    const transfer = new IncomingTransfer(offer, performance.now());
    const id = transfer.id;
    this.#live.set(id, transfer);
    const name = offeredName(/** @type {string} */ (offer.name));
    this.#show({ id, direction: 'in', name, size: transfer.size, done: 0, state: 'transferring', message: `From ${this.peerName}` }, {});
    try {
      this.#parts.set(id, await this.received.begin(id));
    } catch (err) {
      this.#handle(transfer, transfer.reject(`This phone cannot store the file (${/** @type {Error} */ (err).message}).`));
      return;
    }
    this.#handle(transfer, transfer.accept());
  }

  /** @param {import('../core/frames.js').DataFrame} frame */
  onFrame(frame) {
    const transfer = this.#live.get(frame.transferId);
    if (!(transfer instanceof IncomingTransfer)) {
      console.info('[files] a frame for no transfer here (late after a cancel, or unknown)');
      return;
    }
    this.#handle(transfer, transfer.receiveFrame(frame, performance.now()));
  }

  /**
   * @param {IncomingTransfer | OutgoingTransfer} transfer
   * @param {import('../core/transfer.js').TransferEvent[]} events
   */
  #handle(transfer, events) {
    this.#flush(transfer);
    const view = this.#views.get(transfer.id);
    for (const event of events) {
      if (transfer instanceof OutgoingTransfer) {
        this.#senders.get(transfer.id)?.(event);
        continue;
      }
      const part = this.#parts.get(transfer.id);
      if (event.type === 'chunk') part?.append(event.data);
      else if (event.type === 'progress' && view) this.#show(view, { done: event.done });
      else if (event.type === 'verified') this.#commit(transfer);
      else if (['cancelled', 'failed', 'rejected', 'interrupted'].includes(event.type)) {
        this.#live.delete(transfer.id);
        this.#parts.delete(transfer.id);
        // A partial file is never kept as received: its pieces go, and the row says how it
        // ended only once they are gone (so "cancelled" on screen means nothing is left).
        const ended = () => { if (view) this.#show(view, { state: /** @type {any} */ (event.type), message: this.#sentence(event) }); };
        if (part) part.discard().catch((err) => console.info(`[files] could not remove a partial file: ${err}`)).finally(ended);
        else ended();
      }
    }
  }

  /** @param {IncomingTransfer} transfer */
  async #commit(transfer) {
    const part = this.#parts.get(transfer.id);
    const view = this.#views.get(transfer.id);
    if (!part || !view) return;
    try {
      const offer = transfer.offer;
      const blob = await part.commit({ name: view.name, mime: /** @type {string | null} */ (offer.mime),
        size: transfer.size, sha256: /** @type {string} */ (offer.sha256) });
      this.#handle(transfer, transfer.committed());
      this.#live.delete(transfer.id);
      this.#parts.delete(transfer.id);
      this.#show(view, { state: 'completed', done: view.size, blob, message: `From ${this.peerName} · sha-256 checked` });
    } catch (err) {
      this.#handle(transfer, transfer.fail('disk_full', `The phone could not store the file (${/** @type {Error} */ (err).message}).`));
    }
  }

  /** @param {import('../core/transfer.js').TransferEvent} event */
  #sentence(event) {
    const who = 'by' in event && event.by === 'peer' ? this.peerName : 'You';
    // Our own reason repeats what "You cancelled" says; the other side's reason is news.
    if (event.type === 'cancelled') return event.by === 'peer' ? `${who} cancelled: ${event.message}` : 'You cancelled.';
    if (event.type === 'rejected') return event.by === 'peer' ? `${this.peerName} declined: ${event.message}` : 'Declined.';
    if (event.type === 'failed') return `Failed (${event.code}): ${event.message}`;
    if (event.type === 'interrupted') return 'The connection dropped.';
    return '';
  }

  /** Stop one transfer from the phone. @param {string} id */
  cancel(id) {
    const transfer = this.#live.get(id);
    if (transfer) this.#handle(transfer, transfer.cancel('Cancelled on the phone.'));
  }

  /** The channel went away. */
  close() {
    for (const transfer of [...this.#live.values()]) this.#handle(transfer, transfer.interrupt());
  }
}
