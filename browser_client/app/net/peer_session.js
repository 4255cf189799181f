// A connected, bound channel to the paired PC: the port of peer_agent/session.py PeerSession
// for what the phone does — text and its receipts, liveness pings (which also measure the
// round-trip time shown with the path), unpairing; page cards and pulls (pages.js) and files
// (files.js) get their messages and binary frames from here.

import { PeerbeamError } from '../core/errors.js';
import { b64urlEncode } from '../core/bytes.js';
import { decodeFrame } from '../core/frames.js';
import { Files } from './files.js';
import { Pages } from './pages.js';
import { sleep, within } from './timing.js';

// peer_agent/config.py: ping every 5 s; 15 s without a pong means the PC is gone.
const PING_INTERVAL_MS = 5_000;
const PING_TIMEOUT_MS = 15_000;
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Why a session ended: we unpaired, the PC removed the pairing, the connection was lost, or
 * the app closed it.
 * @typedef {'unpaired' | 'removed' | 'lost' | 'closed'} EndCode
 */

/**
 * @typedef {object} SessionEvents
 * @property {(text: string) => void} onText a text from the PC
 * @property {() => void} onChange the path or round-trip time may have changed
 * @property {(card: import('./pages.js').Card) => void} onCard a page card from the PC
 * @property {(view: import('./files.js').TransferView) => void} onTransfer a transfer changed
 */

export class PeerSession {
  #pingIds = 1;
  #lastPong = performance.now();
  /** @type {Map<string, () => void>} */ #deliveries = new Map();
  /** @type {Map<number, () => void>} */ #pings = new Map();
  /** @type {(code: EndCode, message: string) => void} */ #end = () => {};
  #ended = false;
  #unpairing = false;
  /** @type {ReturnType<typeof setInterval> | undefined} */ #keepalive;

  /**
   * @param {object} options
   * @param {string} options.name the PC's name
   * @param {import('./dialogue.js').Dialogue} options.dialogue
   * @param {import('./rtc_link.js').RtcLink} options.link
   * @param {SessionEvents} options.events
   * @param {Uint8Array} options.pairSecret
   * @param {import('../store/received.js').Received} options.received
   * @param {import('./sync.js').PhoneSync | null} [options.sync] page sync with this PC (sync.js)
   * @param {({message: import('../core/channel.js').ChannelMessage} | {frame: Uint8Array})[]} [options.early]
   *   what arrived between the binding and this session (app.js holdEarly), replayed in order
   */
  constructor({ name, dialogue, link, events, pairSecret, received, sync = null, early = [] }) {
    this.name = name;
    this.sync = sync;
    this.dialogue = dialogue;
    this.link = link;
    this.events = events;
    /** @type {number | null} */
    this.rttMs = null;
    /** Resolves with why the session ended. @type {Promise<{code: EndCode, message: string}>} */
    this.ended = new Promise((resolve) => {
      this.#end = (code, message) => {
        if (this.#ended) return;
        this.#ended = true;
        resolve({ code, message });
      };
    });
    this.pages = new Pages(link, (card) => events.onCard(card));
    this.files = new Files({ link, pairSecret, peerName: name, received, onUpdate: (view) => events.onTransfer(view) });
    link.onMessage = (message) => this.#onMessage(message);
    link.onFrame = (data) => this.#onFrame(data);
    link.onRefused = (error) => this.#sendQuietly({ t: 'error', code: error.code === 'frame_too_large' ? 'frame_too_large' : 'bad_message',
      message: `A message was refused: ${error.code === 'frame_too_large' ? 'it is over 64 KiB' : 'it does not fit the schema'}.` });
    link.closed.then((reason) => this.#end('lost', `The connection closed (${reason}).`));
    dialogue.fatal.catch((error) => this.#end(error.code === 'unknown_device' ? 'removed' : 'lost', error.message));
    this.#keepalive = setInterval(() => this.#tick(), PING_INTERVAL_MS);
    this.ended.then(() => this.close());
    sync?.attach(this);
    for (const item of early) {
      if ('message' in item) this.#onMessage(item.message);
      else this.#onFrame(item.frame);
    }
  }

  /** A binary frame: a thumbnail of a pending card, else file data. @param {Uint8Array} data */
  #onFrame(data) {
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (err) {
      if (!(err instanceof PeerbeamError)) throw err;
      console.info(`[session] refused a frame: ${err.code}`);
      return;
    }
    if (this.pages.owns(frame.transferId)) this.pages.onFrame(frame);
    else if (this.sync?.owns(frame.transferId)) this.sync.onFrame(frame);
    else this.files.onFrame(frame);
  }

  /** @param {import('../core/channel.js').ChannelMessage} message */
  #onMessage(message) {
    // Page sync, and the reader views of synced tabs (cards with `doc`): sync.js.
    if (message.t.startsWith('sync.') || (message.t === 'page.push' && message.doc)) {
      this.sync?.onMessage(message);
      return;
    }
    if (message.t.startsWith('page.')) {
      this.pages.onMessage(message);
      return;
    }
    if (message.t.startsWith('transfer.')) {
      this.files.onMessage(message);
      return;
    }
    switch (message.t) {
      case 'text':
        this.events.onText(/** @type {string} */ (message.text));
        this.#sendQuietly({ t: 'delivered', id: message.id });
        break;
      case 'delivered':
        this.#deliveries.get(/** @type {string} */ (message.id))?.();
        break;
      case 'ping':
        this.#sendQuietly({ t: 'pong', id: message.id, sent_at: message.sent_at });
        break;
      case 'pong': {
        this.#lastPong = performance.now();
        this.rttMs = performance.now() - /** @type {number} */ (message.sent_at) * 1000;
        this.#pings.get(/** @type {number} */ (message.id))?.();
        this.events.onChange();
        break;
      }
      case 'unpair':
        this.#end('removed', `${this.name} removed the pairing.`);
        break;
      case 'error':
        console.info(`[session] the PC said: ${message.code}: ${message.message}`);
        this.sync?.onMessage(message);
        break;
      default:
        break;
    }
  }

  #tick() {
    if (performance.now() - this.#lastPong > PING_TIMEOUT_MS) {
      this.#end('lost', `${this.name} did not answer for ${PING_TIMEOUT_MS / 1000} s.`);
      return;
    }
    this.#sendQuietly({ t: 'ping', id: this.#pingIds++, sent_at: performance.now() / 1000 });
  }

  /** One ping round trip, so the path we show comes with a real round-trip time. */
  async measureRtt(ms = 5_000) {
    const id = this.#pingIds++;
    const pong = new Promise((resolve) => this.#pings.set(id, () => resolve(undefined)));
    this.#sendQuietly({ t: 'ping', id, sent_at: performance.now() / 1000 });
    try {
      await within(pong, ms, 'no pong');
    } catch {
      // no answer in time: the RTT stays unknown
    } finally {
      this.#pings.delete(id);
    }
    return this.rttMs;
  }

  /**
   * Send a text; resolves once the PC confirmed delivery.
   * @param {string} text
   */
  async sendText(text) {
    const id = b64urlEncode(crypto.getRandomValues(new Uint8Array(9)));
    const delivered = new Promise((resolve) => this.#deliveries.set(id, () => resolve(undefined)));
    this.link.send({ t: 'text', id, text });
    try {
      await within(delivered, DELIVERY_TIMEOUT_MS, `${this.name} did not confirm delivery within 10 s.`, this.dialogue.fatal);
    } finally {
      this.#deliveries.delete(id);
    }
    return id;
  }

  /** Tell the PC to forget us, give the message a moment to leave, then end. */
  async unpair() {
    this.#unpairing = true;
    this.link.send({ t: 'unpair' });
    await sleep(300);
    this.#end('unpaired', 'You removed the pairing.');
  }

  get unpairing() {
    return this.#unpairing;
  }

  /** @param {import('../core/channel.js').ChannelMessage} message */
  #sendQuietly(message) {
    try {
      this.link.send(message);
    } catch (err) {
      if (!(err instanceof PeerbeamError)) throw err;
    }
  }

  close() {
    clearInterval(this.#keepalive);
    this.sync?.detach(this);
    this.pages.close();
    this.files.close();
    this.#end('closed', 'Closed.');
    this.link.close();
    this.dialogue.close();
  }
}
