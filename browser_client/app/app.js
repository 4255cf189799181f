// The phone app's flows, between the screens (ui/) and the network (net/meet.js):
//
// * first contact (DESIGN "Pairing"): the QR link -> pair.peek (who, until when; burns
//   nothing) -> "Pair with <PC>?" -> only after the tap: pair.join, the NK handshake with the
//   QR secret, the 6-digit code, the PC's accept, WebRTC, the binding MACs -> connected;
// * come back later (DESIGN "Reconnect"): the rendezvous id of the day, the KK handshake with
//   the pairing record, WebRTC again — and again after every drop, with backoff;
// * forget: tell the PC (unpair) when it is there, and delete the record;
// * connected: page cards from the PC, pulls by button or shake, files both ways;
// * page sync (docs/SYNC.md): "Follow my PC", the reader view of the synced tab (ui/reader.js),
//   kept usable while the PC is away (its document lives in IndexedDB, net/sync.js).

import { PeerbeamError } from './core/errors.js';
import { peek, pair, rendezvous } from './net/meet.js';
import { PeerSession } from './net/peer_session.js';
import { PhoneSync } from './net/sync.js';
import { sleep } from './net/timing.js';
import { ReaderView } from './ui/reader.js';
import { failureFor } from './ui/screens.js';
import { askForMotion, listenForShakes, shakeSupport } from './ui/shake.js';
import { Received } from './store/received.js';
import { SyncStore } from './store/sync.js';
import { syncEntry } from './ui/sync_entry.js';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;
// A PC that is merely slow to come back (it noticed our reload a moment ago) is not "offline"
// yet: say so only after this long.
const OFFLINE_AFTER_MS = 4_000;
const PATH_REFRESH_MS = 2_000;

/** @typedef {import('./store/pairings.js').PairingRecord} PairingRecord */

/** A name for this device that the PC user recognises, from what the browser says it is. */
export function deviceName() {
  const ua = navigator.userAgent;
  if (/iPhone/.test(ua)) return 'iPhone';
  if (/iPad/.test(ua)) return 'iPad';
  if (/Android/.test(ua)) return 'Android phone';
  return 'Phone';
}

/**
 * Hold what the PC sends from the moment the link is bound until the session takes over (the
 * pairing record and the sync document are read from IndexedDB in between): the PC sends
 * `sync.open` and its step 1 at once, and a link drops what arrives with no handler set.
 * Called in the first continuation after pair() / rendezvous(), before any I/O can run.
 * @param {import('./net/rtc_link.js').RtcLink} link
 */
function holdEarly(link) {
  /** @type {({message: import('./core/channel.js').ChannelMessage} | {frame: Uint8Array})[]} */
  const early = [];
  link.onMessage = (message) => early.push({ message });
  link.onFrame = (frame) => early.push({ frame });
  return early;
}

/** @param {unknown} err @returns {PeerbeamError} */
function asPeerbeamError(err) {
  if (err instanceof PeerbeamError) return err;
  console.error(err);
  return new PeerbeamError('internal', `Something failed inside the app (${/** @type {Error} */ (err)?.message ?? err}).`);
}

export class App {
  /** @type {PeerSession | null} */ #session = null;
  /** @type {PairingRecord | null} */ #record = null;
  /** @type {AbortController | null} */ #attempt = null;
  /** @type {Promise<Received> | null} */ #received = null;
  /** @type {(() => void) | null} */ #stopShakes = null;
  /** @type {Promise<import('./store/shared.js').Shared> | null} */ #shared = null;
  /** @type {(() => void) | null} */ #wake = null;
  /** @type {Promise<SyncStore> | null} */ #syncStore = null;
  /** @type {PhoneSync | null} page sync with the PC of #record */ #sync = null;
  /** @type {ReaderView | null} */ #reader = null;
  /** @type {(() => void) | null} shows the connected main screen of the running session */ #showMain = null;
  /** @type {(() => void)[]} what arrived while the reader view was on screen */ #missed = [];
  #stopped = false;

  /**
   * @param {import('./ui/screens.js').Ui} ui
   * @param {import('./store/pairings.js').Store} store
   * @param {string} origin this page's origin: the signaling server that served it
   */
  constructor(ui, store, origin) {
    this.ui = ui;
    this.store = store;
    this.origin = origin;
    this.name = deviceName();
  }

  // -- first contact --------------------------------------------------------------------------

  /** @param {import('./core/link.js').PairingLink} link */
  async peek(link) {
    this.ui.checking();
    let info;
    try {
      info = await peek(this.origin, link.token);
    } catch (err) {
      this.#fail(asPeerbeamError(err), () => this.peek(link));
      return;
    }
    this.ui.confirm({
      name: info.name,
      expiresAt: info.expiresAt,
      onPair: () => this.pair(link, info.name),
      onCancel: () => this.home(),
    });
  }

  /** @param {import('./core/link.js').PairingLink} link @param {string} pcName */
  async pair(link, pcName) {
    this.ui.pairing({ name: pcName, step: 'handshake' });
    this.ui.status({ name: pcName, state: 'connecting' });
    /** @type {string | undefined} */
    let code;
    try {
      const met = await pair({
        origin: this.origin, link, identity: await this.store.identity(), name: this.name,
        onCode: (c) => {
          code = c;
          this.ui.pairing({ name: pcName, step: 'accept', code });
        },
        onAccepted: () => this.ui.pairing({ name: pcName, step: 'connect', code }),
      });
      const early = holdEarly(met.link);
      const record = await this.store.put(met.record);
      this.#record = record;
      await this.#syncFor(record);
      this.#maintain(record, await this.#sessionOf(record, met, early));
    } catch (err) {
      this.ui.status({ name: pcName, state: 'none' });
      this.#fail(asPeerbeamError(err));
    }
  }

  // -- connected, and coming back -------------------------------------------------------------

  /** The newest pairing, reconnected; or the welcome screen. */
  async home() {
    const [record] = await this.store.records();
    if (record === undefined) {
      this.ui.status({ state: 'none' });
      this.ui.welcome();
      return;
    }
    this.#record = record;
    const sync = await this.#syncFor(record);
    // The synced page is readable at once, from IndexedDB, while the PC is being reached.
    if (sync?.docId && sync.viewing) this.#openReader();
    this.#maintain(record, null);
  }

  /**
   * @param {PairingRecord} record @param {import('./net/meet.js').Met} met
   * @param {ReturnType<typeof holdEarly>} early
   */
  async #sessionOf(record, met, early) {
    this.#received ??= Received.open();
    return new PeerSession({
      name: record.peerName, dialogue: met.dialogue, link: met.link, pairSecret: record.pairSecret,
      received: await this.#received,
      sync: this.#sync,
      early,
      events: {
        onText: (text) => this.#whileAway(() => this.ui.message('in', text)('from your PC'), 'sent a text'),
        onChange: () => this.#showStatus(),
        onCard: (card) => this.#whileAway(() => this.ui.card(card), 'sent a page'),
        onTransfer: (view) => this.ui.transfer(view, (id) => this.#session?.files.cancel(id)),
      },
    });
  }

  async #showStatus() {
    const session = this.#session;
    const record = this.#record;
    if (!session || !record) return;
    const path = await session.link.path().catch(() => null);
    this.ui.status({ name: record.peerName, state: 'connected', path, rttMs: session.rttMs ?? path?.rttMs ?? null });
  }

  /**
   * Keep a session with this PC up: run the one we have, then meet again through the
   * rendezvous id after every drop, until unpaired (the port of Node._maintain).
   * @param {PairingRecord} record
   * @param {PeerSession | null} first
   */
  async #maintain(record, first) {
    let session = first;
    let backoff = RETRY_MIN_MS;
    while (!this.#stopped) {
      if (session === null) {
        try {
          session = await this.#meetAgain(record);
          backoff = RETRY_MIN_MS;
        } catch (err) {
          const error = asPeerbeamError(err);
          if (this.#stopped) return;
          if (error.code === 'unknown_device') {
            await this.#removed(record, `${record.peerName} no longer has a pairing with this phone.`);
            return;
          }
          if (error.code === 'interception') {
            this.ui.status({ name: record.peerName, state: 'offline' });
            this.#fail(error, () => this.#maintain(record, null));
            return;
          }
          this.#offline(record, error.code === 'peer_gone' ? '' : error.message);
          await this.#pause(backoff);
          backoff = Math.min(backoff * 2, RETRY_MAX_MS);
          continue;
        }
        if (this.#stopped) {
          session.close(); // forgotten while it was connecting
          return;
        }
      }
      const end = await this.#run(session, record);
      session = null;
      if (end.code === 'unpaired' || this.#stopped) return;
      if (end.code === 'removed') {
        await this.#removed(record, end.message);
        return;
      }
      console.info(`[app] session ended: ${end.message}`);
      this.#offline(record, '');
    }
  }

  /** @param {PairingRecord} record */
  async #meetAgain(record) {
    // Once the PC is known to be offline, the screen and the status bar say so until it is back.
    if (document.body.dataset.screen !== 'offline') {
      this.ui.status({ name: record.peerName, state: 'connecting' });
      if (!this.#readerShowing) this.ui.connecting(record.peerName);
    }
    const attempt = new AbortController();
    this.#attempt = attempt;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let offline;
    try {
      const met = await rendezvous({
        record, identity: await this.store.identity(), name: this.name, signal: attempt.signal,
        onWaiting: () => { offline = setTimeout(() => this.#offline(record, ''), OFFLINE_AFTER_MS); },
        onMatched: () => {
          clearTimeout(offline);
          this.ui.status({ name: record.peerName, state: 'connecting' });
        },
      });
      const early = holdEarly(met.link);
      const peerName = /** @type {string} */ (met.done.peer.name);
      if (peerName !== record.peerName) Object.assign(record, await this.store.update(record, { peerName }));
      return this.#sessionOf(record, met, early);
    } finally {
      clearTimeout(offline);
      if (this.#attempt === attempt) this.#attempt = null;
    }
  }

  /** @param {PeerSession} session @param {PairingRecord} record */
  async #run(session, record) {
    this.#session = session;
    const showMain = () => this.#mainScreen(session, record);
    this.#showMain = showMain;
    if (!this.#readerShowing) showMain();
    this.#sendShared(session);
    this.ui.status({ name: record.peerName, state: 'connected' });
    await session.measureRtt();
    await this.#showStatus();
    await this.store.update(record, { lastSeen: Date.now() / 1000 }).catch(() => {});
    const refresh = setInterval(() => this.#showStatus(), PATH_REFRESH_MS);
    try {
      return await session.ended;
    } finally {
      this.#stopShakes?.();
      this.#stopShakes = null;
      clearInterval(refresh);
      if (this.#session === session) this.#session = null;
      if (this.#showMain === showMain) this.#showMain = null;
    }
  }

  /** The connected main screen, and what it starts (shake, shared items, page sync). @param {PeerSession} session @param {PairingRecord} record */
  #mainScreen(session, record, note = '') {
    this.ui.connected({
      name: record.peerName,
      onSend: (text) => this.#sendText(session, text),
      onForget: () => this.forget(),
      onPull: () => this.pull(),
      onFiles: (files) => this.sendFiles(files),
      shake: shakeSupport(),
      onShakeOn: async () => {
        if (await askForMotion()) {
          this.#listenForShakes();
          this.ui.shakeListening();
        } else this.ui.pull({ state: 'refused', code: 'motion', text: 'Shake needs motion access: allow it in Settings, or use the button.' });
      },
    });
    if (shakeSupport() === 'ready') this.#listenForShakes();
    const sync = this.#sync;
    if (sync !== null) {
      document.getElementById('pull-status')?.after(syncEntry({ sync, pcName: record.peerName, note, onOpen: () => this.#openReader() }));
    }
    for (const replay of this.#missed.splice(0)) replay();
  }

  // -- page sync --------------------------------------------------------------------------------

  /** The page sync of this pairing, from IndexedDB (null if this browser cannot keep it). @param {PairingRecord} record */
  async #syncFor(record) {
    if (this.#sync?.pairing === record.id) return this.#sync;
    try {
      this.#syncStore ??= SyncStore.open();
      const sync = await PhoneSync.open(await this.#syncStore, record.id);
      sync.subscribe((event) => {
        if (event.kind !== 'doc' || this.#sync !== sync) return;
        if (event.doc !== null) this.#openReader();
        else if (this.#readerShowing) this.#leaveReader(event.why);
      });
      this.#sync = sync;
    } catch (err) {
      console.info(`[app] page sync is not available: ${err}`);
      this.#sync = null;
    }
    return this.#sync;
  }

  get #readerShowing() {
    return this.#reader?.showing ?? false;
  }

  #openReader() {
    const sync = this.#sync;
    const record = this.#record;
    if (sync === null || record === null) return;
    sync.setViewing(true);
    if (this.#readerShowing) return;
    this.#reader?.dispose();
    this.#reader = new ReaderView({ sync, pcName: record.peerName, onBack: () => this.#leaveReader() });
    this.#reader.show();
  }

  /** Back from the reader view: the main screen, or what the connection's state calls for. @param {string} [note] */
  #leaveReader(note = '') {
    this.#sync?.setViewing(false);
    this.#reader?.dispose();
    this.#reader = null;
    const record = this.#record;
    if (this.#session !== null && this.#showMain !== null && record !== null) {
      this.#mainScreen(this.#session, record, note);
    } else if (record !== null) {
      if (document.body.dataset.state === 'offline') this.#offline(record, '');
      else this.ui.connecting(record.peerName);
    }
  }

  /**
   * Show something on the main screen; while the reader view is up, keep it for the way back
   * and say that it came.
   * @param {() => void} show @param {string} what
   */
  #whileAway(show, what) {
    if (!this.#readerShowing) {
      show();
      return;
    }
    this.#missed.push(show);
    this.#reader?.say(`${this.#record?.peerName ?? 'Your PC'} ${what}: it is on the main screen (Back).`);
  }

  /** @param {PeerSession} session @param {string} text */
  async #sendText(session, text) {
    const mark = this.ui.message('out', text);
    try {
      await session.sendText(text);
      mark('delivered');
    } catch (err) {
      mark('not delivered');
      console.info(`[app] text not delivered: ${asPeerbeamError(err).message}`);
    }
  }

  /**
   * What another app shared to us (Web Share Target, store/shared.js): sent on the first
   * connection after the share.
   * @param {Promise<import('./store/shared.js').Shared>} shared
   */
  shareWhenConnected(shared) {
    this.#shared = shared.catch((err) => {
      console.info(`[app] the shared items could not be read: ${err}`);
      return { files: [], text: '' };
    });
  }

  /** @param {PeerSession} session */
  async #sendShared(session) {
    const pending = this.#shared;
    if (pending === null) return;
    this.#shared = null;
    const { files, text } = await pending;
    if (text) await this.#sendText(session, text);
    if (files.length) await this.sendFiles(files);
  }

  #listenForShakes() {
    this.#stopShakes?.();
    this.#stopShakes = listenForShakes(() => this.pull());
  }

  // -- what a connected phone does -------------------------------------------------------------

  /** Ask the PC for the page it shows now; the card or the PC's reason appears. */
  async pull() {
    const session = this.#session;
    if (session === null) return;
    this.ui.pull({ state: 'asking', text: `Asking ${session.name} for its page…` });
    const answer = await session.pages.pull();
    if ('card' in answer) {
      this.ui.pull({ state: 'done', text: '' });
      return;
    }
    const { code, message } = answer.refused;
    const next = {
      inactive: `${session.name} is asleep. On the PC, run “peerbeam activate” or click the peerbeam button in the browser, then try again.`,
      no_page: `${session.name} can’t tell which page it shows. Install the peerbeam browser extension there, or beam the page from the PC.`,
    }[code];
    this.ui.pull({ state: 'refused', code, text: message || next || `${session.name} did not send its page (${code}).` });
  }

  /** Send files (picked, photographed, pasted or shared) to the PC, one after the other. @param {Blob[]} files */
  async sendFiles(files) {
    for (const file of files) {
      const session = this.#session;
      if (session === null) return;
      try {
        await session.files.send(file, /** @type {File} */ (file).name || 'file');
      } catch (err) {
        console.info(`[app] file not sent: ${asPeerbeamError(err).message}`);
      }
    }
  }

  /** @param {PairingRecord} record @param {string} message */
  #offline(record, message) {
    if (this.#stopped) return;
    this.ui.status({ name: record.peerName, state: 'offline' });
    // The reader view stays usable offline: its edits merge when the PC is back.
    if (this.#readerShowing) return;
    this.ui.offline({
      name: record.peerName,
      message,
      onRetry: () => {
        this.#attempt?.abort(); // a waiting rendezvous starts over at once
        this.#wake?.();
      },
      onForget: () => this.forget(),
    });
  }

  /** Sleep before the next attempt; "Try again now" cuts it short. @param {number} ms */
  #pause(ms) {
    return Promise.race([sleep(ms), new Promise((resolve) => { this.#wake = () => resolve(undefined); })])
      .finally(() => { this.#wake = null; });
  }

  /** The PC removed the pairing: so do we. @param {PairingRecord} record @param {string} message */
  async #removed(record, message) {
    this.#reader?.dispose();
    await this.#sync?.forget();
    await this.store.remove(record);
    this.#record = null;
    this.ui.status({ state: 'none' });
    this.ui.failure({ kind: 'removed', message });
  }

  // -- forget -----------------------------------------------------------------------------------

  async forget() {
    const record = this.#record;
    if (record === null) return;
    this.#stopped = true;
    const session = this.#session;
    let told = false;
    if (session !== null) {
      try {
        await session.unpair();
        told = true;
      } catch (err) {
        console.info(`[app] could not tell the PC: ${asPeerbeamError(err).message}`);
      }
    }
    this.#attempt?.abort();
    this.#wake?.();
    session?.close();
    this.#reader?.dispose();
    await this.#sync?.forget();
    await this.store.remove(record);
    this.#record = null;
    this.ui.status({ state: 'none' });
    this.ui.forgotten({ name: record.peerName, told, phoneName: this.name });
  }

  /** @param {PeerbeamError} error @param {() => void} [retry] */
  #fail(error, retry) {
    console.info(`[app] ${error.code}: ${error.message}`);
    const kind = failureFor(error.code);
    this.ui.failure({ kind, message: error.message, onRetry: retry ?? (kind === 'broken' ? () => location.reload() : undefined) });
  }
}
