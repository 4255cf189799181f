// The reader views of a page-sync session on the phone (docs/SYNC.md "Reader view"): page
// cards with `doc` and `text`, assembled here (core/card.js) rather than shown as beamed cards,
// decoded (core/reader.js) and kept in IndexedDB (store/sync.js) so that a reload shows them
// without the PC.
//
// The document names the reader view of each tab (`reader[tab].card`). One this phone does not
// hold is asked for (`sync.reader`) once per connection: at once for what was named before the
// connection (the PC does not send those again by itself), after READER_GRACE_MS for what is
// named during it (the PC sends a view as soon as it names it; asking at once would bring it
// twice).

import { CardAssembler } from '../core/card.js';
import { decodeReaderText } from '../core/reader.js';

const READER_GRACE_MS = 4_000;

/**
 * @typedef {import('../store/sync.js').SavedImage} SavedImage
 * @typedef {{reader: import('../core/reader.js').ReaderText, images: SavedImage[]}} ReaderView
 */

export class SyncReaders {
  /** @type {Set<string>} reader cards held in the store */ #held = new Set();
  /** @type {Map<string, ReaderView>} */ #views = new Map();
  /** @type {Set<string>} asked for on this connection */ #asked = new Set();
  /** @type {Set<string>} whose push came and whose frames are coming */ #incoming = new Set();
  /** @type {Map<string, ReturnType<typeof setTimeout>>} asks waiting out READER_GRACE_MS */ #timers = new Map();
  #cards = new CardAssembler();
  #connection = 0;

  /**
   * @param {object} options
   * @param {import('../store/sync.js').SyncStore} options.store
   * @param {string} options.pairing
   * @param {() => string | null} options.doc the document held now
   * @param {() => boolean} options.linked whether the PC opened it on this connection (asks go out)
   * @param {(card: string) => void} options.ask send `sync.reader` for the document
   * @param {(card: string) => void} options.onView a reader view is here
   * @param {(text: string) => void} options.onNotice
   */
  constructor({ store, pairing, doc, linked, ask, onView, onNotice }) {
    this.store = store;
    this.pairing = pairing;
    this.doc = doc;
    this.linked = linked;
    this.ask = ask;
    this.onView = onView;
    this.onNotice = onNotice;
  }

  /** The views kept for this pairing (ids only; each is read when shown). */
  async load() {
    for (const card of await this.store.readerCards(this.pairing)) this.#held.add(card);
  }

  /** A new connection: a fresh assembler (it ignores a card id it saw) and fresh asks. */
  connect() {
    this.#connection += 1;
    this.#cards = new CardAssembler();
    this.#forgetAsks();
  }

  disconnect() {
    this.#connection += 1;
    this.#cards.interruptAll();
    this.#forgetAsks();
  }

  /** The document was dropped: so are its views (store/sync.js drops the stored ones). */
  clear() {
    this.#held.clear();
    this.#views.clear();
    this.#forgetAsks();
  }

  /** @param {string} id a binary frame's transfer id */
  owns(id) {
    return this.#cards.owns(id);
  }

  /** @param {import('../core/card.js').PagePush} push */
  onPush(push) {
    if (push.doc === this.doc()) this.#incoming.add(push.id);
    this.#onCard(this.#cards.receivePush(push, performance.now()));
  }

  /** @param {import('../core/frames.js').DataFrame} frame */
  onFrame(frame) {
    this.#onCard(this.#cards.receiveFrame(frame, performance.now()));
  }

  /** @param {import('../core/card.js').CardEvent[]} events */
  #onCard(events) {
    for (const event of events) {
      if (event.type === 'refused') {
        console.info(`[sync] reader frame refused: ${event.code}: ${event.message}`);
        continue;
      }
      if (event.type === 'failed') console.info(`[sync] reader card incomplete: ${event.code}: ${event.message}`);
      const push = event.push;
      if (push === null) continue;
      this.#incoming.delete(push.id);
      if (push.doc !== this.doc()) continue;
      if (event.text === null) {
        // Asked again on the next connection (this one's assembler would ignore a replay).
        console.info(`[sync] reader card ${push.id} came without its text`);
        continue;
      }
      this.#keep(push, event.images, event.text);
    }
  }

  /**
   * @param {import('../core/card.js').PagePush} push
   * @param {{thumb: import('../core/card.js').PageThumb, bytes: Uint8Array}[]} images
   * @param {Uint8Array} text
   */
  async #keep(push, images, text) {
    const doc = this.doc();
    let reader;
    try {
      reader = await decodeReaderText(text);
    } catch (err) {
      this.onNotice(/** @type {Error} */ (err).message);
      return;
    }
    if (this.doc() !== doc) return;
    const saved = images.map(({ thumb, bytes }) => ({
      source: thumb.source, mime: thumb.mime, width: thumb.width, height: thumb.height,
      blob: new Blob([bytes], { type: thumb.mime }),
    }));
    this.#views.set(push.id, { reader, images: saved });
    this.#held.add(push.id);
    await this.store.putReader({ pairing: this.pairing, card: push.id, reader, images: saved, savedAt: Date.now() })
      .catch((err) => console.info(`[sync] reader view not stored: ${err}`));
    this.onView(push.id);
  }

  /** Whether this phone holds that view (in memory or stored). @param {string} card */
  holds(card) {
    return this.#views.has(card) || this.#held.has(card);
  }

  /** A view: from memory, else from the store, else null (and it is asked for). @param {string} card @returns {Promise<ReaderView | null>} */
  async view(card) {
    const kept = this.#views.get(card);
    if (kept !== undefined) return kept;
    const saved = await this.store.reader(this.pairing, card).catch(() => null);
    if (saved === null) {
      this.#held.delete(card);
      this.want(card);
      return null;
    }
    const view = { reader: saved.reader, images: saved.images };
    this.#views.set(card, view);
    return view;
  }

  /**
   * Ask the PC for a view this phone lacks, once per connection; unless `now`, only if it has
   * not come by itself after READER_GRACE_MS.
   * @param {string} card @param {boolean} [now]
   */
  want(card, now = false) {
    if (!this.linked() || this.doc() === null || this.holds(card) || this.#asked.has(card)) return;
    const connection = this.#connection;
    const ask = () => {
      this.#timers.delete(card);
      if (this.#connection !== connection || !this.linked() || this.holds(card) || this.#incoming.has(card)
        || this.#asked.has(card)) return;
      this.#asked.add(card);
      this.ask(card);
    };
    if (now) ask();
    else if (!this.#timers.has(card)) this.#timers.set(card, setTimeout(ask, READER_GRACE_MS));
  }

  #forgetAsks() {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#asked.clear();
    this.#incoming.clear();
  }
}
