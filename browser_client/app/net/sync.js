// Page sync on the phone (docs/SYNC.md): the shell around core/sync_doc.js (the shared Y.Doc)
// and core/sync_wire.js (its y-protocols messages), for one pairing — the port of the
// non-owner half of peer_agent/syncing.py.
//
// * The PC owns the session: its `sync.open {doc, rejoin: false}` names the document. A new id
//   replaces whatever this phone held; the same id (a reconnect) keeps it. Either way both sides
//   then send step 1 and get what they lack as step 2, so edits made while apart merge.
// * On every connection this phone says `sync.open {doc, rejoin: true}` for the document it
//   still holds; the PC answers `sync.stop` if that session is over.
// * The document and the reader views live in IndexedDB (store/sync.js), saved a moment after
//   each change, so a reload or a lost connection loses nothing.
// * Reader views are page cards with `doc` (and `text`): sync_readers.js assembles and keeps
//   them, instead of showing them as beamed cards, and asks for the active tab's once per
//   connection (`sync.reader`) when this phone lacks it.
// * Local operations are written with by = "phone"; changes are sent in batches at most every
//   50 ms (SyncLink.nextDeadline()).

import { bytesToHex } from '../core/bytes.js';
import { PeerbeamError } from '../core/errors.js';
import { SyncDoc, SyncError } from '../core/sync_doc.js';
import { SyncLink } from '../core/sync_wire.js';
import { SyncReaders } from './sync_readers.js';

const SAVE_DELAY_MS = 400;
// The agent gives its own start 45 s (peer_agent/syncing.py START_TIMEOUT); we wait a bit longer.
const START_TIMEOUT_MS = 50_000;
/** Channel error codes that concern page sync: their sentence is shown with the reader view. */
export const SYNC_ERRORS = new Set(['unknown_doc', 'bad_update', 'update_too_large', 'no_access', 'not_syncing']);

/** A random 16-hex id (highlights, bookmarks, tabs the phone opens). */
export function randomId() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(8)));
}

/**
 * @typedef {import('./sync_readers.js').ReaderView} ReaderView
 * @typedef {ReturnType<SyncDoc['state']>} SyncState
 * @typedef {{kind: 'state', state: SyncState, local: boolean}
 *   | {kind: 'reader', card: string}
 *   | {kind: 'doc', doc: string | null, why: string}
 *   | {kind: 'link', connected: boolean}
 *   | {kind: 'notice', text: string}
 *   | {kind: 'starting', on: boolean}} SyncEvent
 * @typedef {{link: {send: (message: object) => void}, name: string}} SessionLike
 */

export class PhoneSync {
  /** @type {string | null} */ docId = null;
  /** @type {SyncDoc | null} */ doc = null;
  /** @type {SyncLink | null} */ #link = null;
  /** @type {SessionLike | null} */ #session = null;
  /** @type {SyncReaders} */ #readers;
  /** @type {Set<(event: SyncEvent) => void>} */ #listeners = new Set();
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #flushTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #saveTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #startTimer;
  /** @type {() => void} */ #unwatch = () => {};
  /** @type {string | null} a document stopped here while the PC was away: it is told on its next open */
  #stopped = null;
  /** Whether the reader view was on screen: a reload opens it again. */
  viewing = false;
  starting = false;

  /**
   * @param {import('../store/sync.js').SyncStore} store
   * @param {string} pairing the PC's public key in hex (PairingRecord.id)
   */
  constructor(store, pairing) {
    this.store = store;
    this.pairing = pairing;
    this.#readers = new SyncReaders({
      store, pairing, doc: () => this.docId, linked: () => this.#link !== null,
      ask: (card) => {
        if (this.docId !== null) this.#send({ t: 'sync.reader', doc: this.docId, card });
      },
      onView: (card) => this.#emit({ kind: 'reader', card }),
      onNotice: (text) => this.#emit({ kind: 'notice', text }),
    });
  }

  /** The document this phone holds for that PC, from IndexedDB. @param {import('../store/sync.js').SyncStore} store @param {string} pairing */
  static async open(store, pairing) {
    const sync = new PhoneSync(store, pairing);
    const saved = await store.load(pairing).catch(() => null);
    if (saved !== null) {
      const doc = new SyncDoc();
      try {
        doc.applyUpdate(saved.state, 'store');
      } catch (err) {
        console.info(`[sync] the saved document could not be read, dropped: ${err}`);
        doc.destroy();
        await store.drop(pairing).catch(() => {});
        return sync;
      }
      sync.#adopt(saved.doc, doc);
      sync.viewing = saved.viewing;
      // Without the list, a kept view is read from the store when shown anyway.
      await sync.#readers.load().catch((err) => console.info(`[sync] reader views not listed: ${err}`));
    }
    // A page being closed gets the last changes written now rather than after the delay.
    addEventListener('pagehide', () => sync.#saveNow());
    return sync;
  }

  /** @param {(event: SyncEvent) => void} listener @returns {() => void} */
  subscribe(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @param {SyncEvent} event */
  #emit(event) {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        console.error(err);
      }
    }
  }

  get connected() {
    return this.#link !== null;
  }

  get online() {
    return this.#session !== null;
  }

  state() {
    return this.doc?.state() ?? null;
  }

  // -- the document -------------------------------------------------------------------------

  /** @param {string} docId @param {SyncDoc} doc */
  #adopt(docId, doc) {
    this.docId = docId;
    this.doc = doc;
    const offChange = doc.onChange((state, { local }) => {
      this.#saveLater();
      if (!local) this.#askReaders(state);
      this.#emit({ kind: 'state', state, local });
    });
    this.#unwatch = offChange;
  }

  /** Forget the document (the session ended, or a new one replaces it). @param {string} why */
  #release(why) {
    const had = this.docId;
    this.#link?.close();
    this.#link = null;
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#saveTimer);
    this.#unwatch();
    this.doc?.destroy();
    this.doc = null;
    this.docId = null;
    this.viewing = false;
    this.#readers.clear();
    if (had !== null) {
      console.info(`[sync] document ${had} dropped: ${why}`);
      this.store.drop(this.pairing).catch((err) => console.info(`[sync] not dropped from the store: ${err}`));
    }
  }

  #saveLater() {
    if (this.#saveTimer !== undefined) return;
    this.#saveTimer = setTimeout(() => this.#saveNow(), SAVE_DELAY_MS);
  }

  #saveNow() {
    clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    if (this.doc === null || this.docId === null) return Promise.resolve();
    return this.store.save({ pairing: this.pairing, doc: this.docId, state: this.doc.encodeState(), viewing: this.viewing })
      .catch((err) => console.info(`[sync] the document was not saved: ${err}`));
  }

  /** The reader view is on screen (or not): remembered for the next load. @param {boolean} on */
  setViewing(on) {
    if (this.viewing === on) return;
    this.viewing = on;
    this.#saveLater();
  }

  /** Write everything now (tests, and before the page goes away). */
  save() {
    return this.#saveNow();
  }

  /**
   * One local operation, by = "phone" where it takes one (the caller passes it). Returns
   * whether it was made; a refused one says why through a notice.
   * @param {keyof SyncDoc & string} op @param {...unknown} args
   */
  op(op, ...args) {
    const doc = this.doc;
    if (doc === null) return false;
    try {
      /** @type {any} */ (doc)[op](...args);
      return true;
    } catch (err) {
      if (!(err instanceof SyncError)) throw err;
      this.#emit({ kind: 'notice', text: err.message });
      return false;
    }
  }

  // -- the connection -----------------------------------------------------------------------

  /** A session with the PC began: say which document we still hold. @param {SessionLike} session */
  attach(session) {
    this.#session = session;
    this.#readers.connect();
    this.#link?.close();
    this.#link = null;
    if (this.docId !== null) this.#send({ t: 'sync.open', doc: this.docId, rejoin: true });
  }

  /** @param {SessionLike} session */
  detach(session) {
    if (this.#session !== session) return;
    this.#session = null;
    this.#link?.close();
    this.#link = null;
    clearTimeout(this.#flushTimer);
    this.#readers.disconnect();
    this.#setStarting(false);
    this.#emit({ kind: 'link', connected: false });
  }

  /** @param {object} message */
  #send(message) {
    try {
      this.#session?.link.send(message);
    } catch (err) {
      if (!(err instanceof PeerbeamError)) throw err;
    }
  }

  /** "Follow my PC": ask the PC to start (or rejoin) a session for its current tab. */
  follow() {
    if (this.#session === null || this.starting) return;
    this.#setStarting(true);
    this.#send({ t: 'sync.start' });
    this.#startTimer = setTimeout(() => {
      if (!this.starting) return;
      this.#setStarting(false);
      this.#emit({ kind: 'notice', text: `${this.#session?.name ?? 'Your PC'} did not start page sync in time.` });
    }, START_TIMEOUT_MS);
  }

  /** @param {boolean} on */
  #setStarting(on) {
    if (!on) clearTimeout(this.#startTimer);
    if (this.starting === on) return;
    this.starting = on;
    this.#emit({ kind: 'starting', on });
  }

  /** "Stop sync": both sides drop the document. */
  stop() {
    if (this.docId === null) return;
    if (this.#session === null) this.#stopped = this.docId;
    this.#send({ t: 'sync.stop', doc: this.docId });
    this.#release('stopped on the phone');
    this.#emit({ kind: 'doc', doc: null, why: 'Page sync stopped.' });
  }

  /** The pairing is forgotten: so is its document. */
  async forget() {
    this.#release('the pairing was forgotten');
    await this.store.drop(this.pairing).catch(() => {});
  }

  /**
   * A channel message for page sync: sync.*, a page.push with `doc`, or an error.
   * @param {import('../core/channel.js').ChannelMessage} message
   */
  onMessage(message) {
    switch (message.t) {
      case 'sync.open':
        this.#onOpen(/** @type {string} */ (message.doc), Boolean(message.rejoin));
        break;
      case 'sync.update': {
        if (this.#link === null || message.doc !== this.docId) {
          this.#refuse('unknown_doc', 'A page-sync update arrived for a document that is not open here.');
          return;
        }
        const fault = this.#link.receive(/** @type {any} */ (message), performance.now());
        if (fault !== null) this.#refuse(fault.code, fault.message);
        this.#schedule();
        break;
      }
      case 'sync.stop':
        if (message.doc === this.docId) {
          this.#release('the PC ended it');
          this.#emit({ kind: 'doc', doc: null, why: `${this.#session?.name ?? 'Your PC'} ended page sync.` });
        }
        break;
      case 'sync.refused': {
        this.#setStarting(false);
        // The two refusals a phone user can act on, in the phone's words (as for pulls).
        const name = this.#session?.name ?? 'Your PC';
        const ours = /** @type {Record<string, string>} */ ({
          no_page: `${name} can’t tell which page it shows. Install the peerbeam browser extension there, or start page sync on the PC.`,
          inactive: `${name} is asleep. On the PC, run “peerbeam activate” or click the peerbeam button in the browser, then try again.`,
        })[/** @type {string} */ (message.code)];
        this.#emit({ kind: 'notice', text: ours ?? /** @type {string} */ (message.message) });
        break;
      }
      case 'page.push':
        this.#readers.onPush(/** @type {any} */ (message));
        break;
      case 'error':
        if (SYNC_ERRORS.has(/** @type {string} */ (message.code))) {
          this.#emit({ kind: 'notice', text: /** @type {string} */ (message.message) });
        }
        break;
      default:
        break;
    }
  }

  /** @param {string} docId @param {boolean} rejoin */
  #onOpen(docId, rejoin) {
    if (rejoin) return; // only the PC owns sessions: a rejoin sent to us means nothing here
    if (docId === this.#stopped && !this.starting) {
      this.#stopped = null;
      this.#send({ t: 'sync.stop', doc: docId });
      return;
    }
    const asked = this.starting;
    this.#setStarting(false);
    const fresh = docId !== this.docId;
    if (fresh) {
      this.#release('a new session replaces it');
      this.#adopt(docId, new SyncDoc());
      this.viewing = true;
      this.#saveLater();
    }
    this.#link?.close();
    this.#link = new SyncLink({
      doc: docId, sync: /** @type {SyncDoc} */ (this.doc), send: (m) => this.#send(m), onPending: () => this.#schedule(),
    });
    this.#link.start();
    // A new session, or the answer to our "Follow my PC": the reader view opens.
    if (fresh || asked) this.#emit({ kind: 'doc', doc: docId, why: '' });
    this.#emit({ kind: 'link', connected: true });
    // What the document named before this connection, the PC will not send unasked.
    const state = this.state();
    if (state !== null) this.#askReaders(state, true);
  }

  /** @param {string} code @param {string} message */
  #refuse(code, message) {
    this.#send({ t: 'error', code, message });
  }

  /** Flush coalesced local changes, and due re-syncs, when the link says so. */
  #schedule() {
    const link = this.#link;
    clearTimeout(this.#flushTimer);
    const deadline = link?.nextDeadline() ?? null;
    if (link === null || deadline === null) return;
    this.#flushTimer = setTimeout(() => {
      if (this.#link !== link) return;
      const now = performance.now();
      link.flush(now);
      link.resyncDue(now);
      this.#schedule();
    }, Math.max(0, deadline - performance.now()));
  }

  // -- reader views (sync_readers.js) -------------------------------------------------------

  /** A binary frame's transfer id belongs to a reader card being assembled. @param {string} id */
  owns(id) {
    return this.#readers.owns(id);
  }

  /** @param {import('../core/frames.js').DataFrame} frame */
  onFrame(frame) {
    this.#readers.onFrame(frame);
  }

  /** Whether this phone holds that reader view. @param {string} card */
  holds(card) {
    return this.#readers.holds(card);
  }

  /** A reader view, from memory or IndexedDB; null (and asked for) if it is not here. @param {string} card */
  reader(card) {
    return this.#readers.view(card);
  }

  /** The active tab's reader view, if this phone lacks it. @param {SyncState} state @param {boolean} [now] */
  #askReaders(state, now = false) {
    const card = state.active === null ? undefined : state.reader[state.active]?.card;
    if (card !== undefined) this.#readers.want(card, now);
  }
}
