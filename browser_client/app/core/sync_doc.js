// The shared document of page sync (docs/SYNC.md "The document"): one Y.Doc with the same
// layout and operations as peer_agent/sync_doc.py (pycrdt), so that either side's updates
// (Yjs update v1) mean the same thing on the other.
//
// Pure: no I/O, no timers. The shell persists `encodeState()` and feeds `applyUpdate()`; the
// wire (sync_wire.js SyncLink) turns local updates into y-protocols messages.
//
// Public API (the phone UI and sync_wire.js build on this):
//
//   new SyncDoc({gc = true} = {})          one Y.Doc; gc: Yjs garbage collection (docs: stays on)
//   .ydoc                                   the Y.Doc itself (y-protocols needs it; do not write to it)
//   Operations (each one transaction, origin 'local'; a bad argument throws SyncError 'bad_message'):
//   .openTab(key, url, title, order, by)    .closeTab(key)
//   .navigate(key, url, title, by)          .setActive(key)
//   .scroll(tab, fraction, block, offset, by)          .find(tab, query, match, count, by)
//   .addHighlight(id, url, block, start, end, quote, note, color, by)
//   .editHighlight(id, note = null, color = null)      .deleteHighlight(id)
//   .addBookmark(id, url, title, created, by)          .renameBookmark(id, title)   .deleteBookmark(id)
//   .setFollow(direction, on)               .setReader(tab, card, url)
//   .state() -> {tabs, active, scroll, find, highlights, bookmarks, follow, reader}  plain JSON,
//        entries that do not fit their shape are left out (see SHAPES); active: key | null;
//        follow: both directions, always present (absent in the doc = true)
//   .applyUpdate(update, origin = 'remote')  a Yjs update v1; malformed -> SyncError 'bad_update'
//   .encodeState() -> Uint8Array            the whole document as one update (to persist, or step 2)
//   .stateVector() -> Uint8Array            .encodeDiff(stateVector) -> Uint8Array (what it lacks)
//   .onChange((state, {local}) => …) -> unsubscribe     after every transaction that changed the doc
//   .onLocalUpdate((update) => …) -> unsubscribe        the update of every local operation
//   .destroy()
//
// Keys: a tab key is "t<chrome tab id>" or 16 lower-case hex; highlight, bookmark and card ids
// are 16 lower-case hex. `by` is "pc" or "phone". String caps count code points (Python len).

import { Y } from '../vendor/yjs.js';
import { codePointLength, isWellFormed } from './bytes.js';

export const MAX_URL_CHARS = 8192;
export const MAX_TITLE_CHARS = 1024;
export const MAX_QUOTE_CHARS = 2000;
export const MAX_NOTE_CHARS = 4000;
export const MAX_QUERY_CHARS = 256;
/** docs/SYNC.md "Reader view": at most 2000 blocks of at most 8000 characters. */
export const MAX_BLOCKS = 2000;
export const MAX_BLOCK_CHARS = 8000;
export const COLORS = Object.freeze(['yellow', 'green', 'blue', 'pink']);
export const FOLLOW = Object.freeze(['phone_follows_pc', 'pc_follows_phone']);

const TAB_KEY = /^(?:t[0-9]{1,10}|[0-9a-f]{16})$/;
const ID = /^[0-9a-f]{16}$/;

/** The one error class of page sync: a stable code (signaling/schema.py ErrorCode) and a sentence. */
export class SyncError extends Error {
  /** @param {'bad_message' | 'bad_update' | 'update_too_large' | 'unknown_doc'} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = 'SyncError';
    this.code = code;
  }
}

// ---- shapes: one checker per field; the same table checks an op's arguments and state() ----

/** @typedef {(value: unknown) => boolean} Check */
/** @param {number} max @returns {Check} */
const text = (max) => (v) => typeof v === 'string' && (v.length <= max || codePointLength(v) <= max) && isWellFormed(v);
/** @param {number} lo @param {number} hi @returns {Check} */
const int = (lo, hi) => (v) => Number.isSafeInteger(v) && /** @type {number} */ (v) >= lo && /** @type {number} */ (v) <= hi;
/** @type {Check} */
const unit = (v) => typeof v === 'number' && v >= 0 && v <= 1;
/** @type {Check} */
const finite = (v) => typeof v === 'number' && Number.isFinite(v);
/** @param {RegExp} re @returns {Check} */
const matches = (re) => (v) => typeof v === 'string' && re.test(v);
/** @param {readonly unknown[]} values @returns {Check} */
const oneOf = (values) => (v) => values.includes(v);
const BY = oneOf(['pc', 'phone']);
// Only web pages: a tab, bookmark or reader address is something the PC may open (sync_shapes.py).
const URL = (/** @type {unknown} */ v) => text(MAX_URL_CHARS)(v) && /^https?:\/\//i.test(/** @type {string} */ (v));
const TITLE = text(MAX_TITLE_CHARS);
const COUNT = int(0, Number.MAX_SAFE_INTEGER);

/** Each entry's fields and their checks; `extra` checks the whole entry once its fields fit. */
export const SHAPES = Object.freeze({
  tab: { fields: { url: URL, title: TITLE, order: finite, by: BY } },
  scroll: { fields: { fraction: unit, block: int(0, MAX_BLOCKS - 1), offset: unit, by: BY, n: COUNT } },
  find: { fields: { query: text(MAX_QUERY_CHARS), match: int(-1, Number.MAX_SAFE_INTEGER), count: COUNT, by: BY } },
  highlight: {
    fields: { url: URL, block: int(0, MAX_BLOCKS - 1), start: int(0, MAX_BLOCK_CHARS), end: int(0, MAX_BLOCK_CHARS),
      quote: text(MAX_QUOTE_CHARS), note: text(MAX_NOTE_CHARS), color: oneOf(COLORS), by: BY },
    /** @param {Record<string, any>} h */
    extra: (h) => h.start <= h.end,
  },
  bookmark: { fields: { url: URL, title: TITLE, created: (/** @type {unknown} */ v) => finite(v) && /** @type {number} */ (v) >= 0, by: BY } },
  reader: { fields: { card: matches(ID), url: URL } },
});

/** @typedef {{fields: Record<string, Check>, extra?: (entry: Record<string, any>) => boolean}} Shape */

/**
 * The entry's known fields, read with `get`, if every one fits; else null. Unknown fields are
 * left out: a newer peer may add some.
 * @param {Shape} shape @param {(field: string) => unknown} get
 * @returns {Record<string, any> | null}
 */
function pick(shape, get) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const [field, check] of Object.entries(shape.fields)) {
    const value = get(field);
    if (!check(value)) return null;
    out[field] = value;
  }
  return shape.extra === undefined || shape.extra(out) ? out : null;
}

/** A record (a nested Y.Map whose fields merge on their own). @param {Shape} shape @param {unknown} value */
function fromRecord(shape, value) {
  return value instanceof Y.Map ? pick(shape, (f) => value.get(f)) : null;
}

/** A value (a plain JSON object set on a key, last writer wins). @param {Shape} shape @param {unknown} value */
function fromValue(shape, value) {
  // lib0's readAny builds plain objects; anything else (arrays, bytes, shared types, an object
  // whose prototype a "__proto__" key replaced) is not one of ours.
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return null;
  const object = /** @type {Record<string, unknown>} */ (value);
  return pick(shape, (f) => (Object.hasOwn(object, f) ? object[f] : undefined));
}

/**
 * Throws SyncError('bad_message') naming the first argument that does not fit.
 * @param {string} op @param {Record<string, unknown>} args @param {Record<string, Check>} checks
 */
function validate(op, args, checks) {
  for (const [name, check] of Object.entries(checks)) {
    if (!check(args[name])) throw new SyncError('bad_message', `${op}: the ${name} is not valid.`);
  }
}

export class SyncDoc {
  /** @type {Set<(state: ReturnType<SyncDoc['state']>, info: {local: boolean}) => void>} */
  #changeListeners = new Set();
  /** @type {Set<(update: Uint8Array) => void>} */
  #updateListeners = new Set();
  /** @type {Map<string, number>} by -> the last scroll counter written here */
  #scrollCounters = new Map();
  #doc; #tabs; #view; #scrolls; #finds; #highlights; #bookmarks; #follow; #reader;

  constructor({ gc = true } = {}) {
    this.#doc = new Y.Doc({ gc });
    // Every root is a Map, defined before any remote update arrives: a peer cannot turn one into
    // another type (items it puts in a root's list part are never read).
    this.#tabs = this.#doc.getMap('tabs');
    this.#view = this.#doc.getMap('view');
    this.#scrolls = this.#doc.getMap('scroll');
    this.#finds = this.#doc.getMap('find');
    this.#highlights = this.#doc.getMap('highlights');
    this.#bookmarks = this.#doc.getMap('bookmarks');
    this.#follow = this.#doc.getMap('follow');
    this.#reader = this.#doc.getMap('reader');
    this.#doc.on('update', (/** @type {Uint8Array} */ update, /** @type {unknown} */ origin) => {
      if (origin === 'local') for (const listener of [...this.#updateListeners]) listener(update);
      if (this.#changeListeners.size === 0) return;
      const state = this.state();
      for (const listener of [...this.#changeListeners]) listener(state, { local: origin === 'local' });
    });
  }

  get ydoc() {
    return this.#doc;
  }

  /** @param {() => void} change */
  #local(change) {
    this.#doc.transact(change, 'local');
  }

  // ---- operations (docs/SYNC.md, same names and argument order as the Python port) ----

  openTab(/** @type {string} */ key, /** @type {string} */ url, /** @type {string} */ title, /** @type {number} */ order, /** @type {string} */ by) {
    validate('openTab', { key, url, title, order, by }, { key: matches(TAB_KEY), ...SHAPES.tab.fields });
    this.#local(() => {
      const record = this.#tabs.get(key);
      if (record instanceof Y.Map) {
        // Reopening keeps the record, so that a concurrent navigate on the other side merges.
        for (const [field, value] of Object.entries({ url, title, order, by })) record.set(field, value);
      } else {
        this.#tabs.set(key, new Y.Map(Object.entries({ url, title, order, by })));
      }
    });
  }

  closeTab(/** @type {string} */ key) {
    validate('closeTab', { key }, { key: matches(TAB_KEY) });
    this.#local(() => this.#tabs.delete(key));
  }

  /** Navigating a tab that is gone is a no-op (its close wins). */
  navigate(/** @type {string} */ key, /** @type {string} */ url, /** @type {string} */ title, /** @type {string} */ by) {
    validate('navigate', { key, url, title, by }, { key: matches(TAB_KEY), url: URL, title: TITLE, by: BY });
    this.#local(() => {
      const record = this.#tabs.get(key);
      if (!(record instanceof Y.Map)) return;
      record.set('url', url);
      record.set('title', title);
      record.set('by', by);
    });
  }

  setActive(/** @type {string} */ key) {
    validate('setActive', { key }, { key: matches(TAB_KEY) });
    this.#local(() => this.#view.set('active', key));
  }

  /**
   * `n` counts this writer's scrolls (docs/SYNC.md), so that the same position written twice is
   * still two changes to whoever compares values. It continues from the largest `n` of this
   * writer already in the document, so a reloaded document does not count from 1 again.
   */
  scroll(/** @type {string} */ tab, /** @type {number} */ fraction, /** @type {number} */ block, /** @type {number} */ offset, /** @type {string} */ by) {
    const { n: _n, ...fields } = SHAPES.scroll.fields;
    validate('scroll', { tab, fraction, block, offset, by }, { tab: matches(TAB_KEY), ...fields });
    let n = this.#scrollCounters.get(by) ?? 0;
    this.#scrolls.forEach((value) => {
      const entry = fromValue(SHAPES.scroll, value);
      if (entry !== null && entry.by === by && entry.n > n) n = entry.n;
    });
    n += 1;
    this.#scrollCounters.set(by, n);
    this.#local(() => this.#scrolls.set(tab, { fraction, block, offset, by, n }));
  }

  find(/** @type {string} */ tab, /** @type {string} */ query, /** @type {number} */ match, /** @type {number} */ count, /** @type {string} */ by) {
    validate('find', { tab, query, match, count, by }, { tab: matches(TAB_KEY), ...SHAPES.find.fields });
    this.#local(() => this.#finds.set(tab, { query, match, count, by }));
  }

  addHighlight(/** @type {string} */ id, /** @type {string} */ url, /** @type {number} */ block, /** @type {number} */ start,
    /** @type {number} */ end, /** @type {string} */ quote, /** @type {string} */ note, /** @type {string} */ color, /** @type {string} */ by) {
    const fields = { url, block, start, end, quote, note, color, by };
    validate('addHighlight', { id, ...fields }, { id: matches(ID), ...SHAPES.highlight.fields });
    if (start > end) throw new SyncError('bad_message', 'addHighlight: the start is after the end.');
    this.#local(() => this.#highlights.set(id, new Y.Map(Object.entries(fields))));
  }

  /** Sets what is given (null = unchanged); a deleted highlight stays deleted. */
  editHighlight(/** @type {string} */ id, /** @type {string | null} */ note = null, /** @type {string | null} */ color = null) {
    const orNull = (/** @type {Check} */ check) => (/** @type {unknown} */ v) => v === null || v === undefined || check(v);
    validate('editHighlight', { id, note, color }, { id: matches(ID), note: orNull(SHAPES.highlight.fields.note),
      color: orNull(SHAPES.highlight.fields.color) });
    this.#local(() => {
      const record = this.#highlights.get(id);
      if (!(record instanceof Y.Map)) return;
      if (note !== null && note !== undefined) record.set('note', note);
      if (color !== null && color !== undefined) record.set('color', color);
    });
  }

  deleteHighlight(/** @type {string} */ id) {
    validate('deleteHighlight', { id }, { id: matches(ID) });
    this.#local(() => this.#highlights.delete(id));
  }

  addBookmark(/** @type {string} */ id, /** @type {string} */ url, /** @type {string} */ title, /** @type {number} */ created, /** @type {string} */ by) {
    const fields = { url, title, created, by };
    validate('addBookmark', { id, ...fields }, { id: matches(ID), ...SHAPES.bookmark.fields });
    this.#local(() => this.#bookmarks.set(id, new Y.Map(Object.entries(fields))));
  }

  /** A deleted bookmark stays deleted. */
  renameBookmark(/** @type {string} */ id, /** @type {string} */ title) {
    validate('renameBookmark', { id, title }, { id: matches(ID), title: TITLE });
    this.#local(() => {
      const record = this.#bookmarks.get(id);
      if (record instanceof Y.Map) record.set('title', title);
    });
  }

  deleteBookmark(/** @type {string} */ id) {
    validate('deleteBookmark', { id }, { id: matches(ID) });
    this.#local(() => this.#bookmarks.delete(id));
  }

  setFollow(/** @type {string} */ direction, /** @type {boolean} */ on) {
    validate('setFollow', { direction, on }, { direction: oneOf(FOLLOW), on: (v) => typeof v === 'boolean' });
    this.#local(() => this.#follow.set(direction, on));
  }

  setReader(/** @type {string} */ tab, /** @type {string} */ card, /** @type {string} */ url) {
    validate('setReader', { tab, card, url }, { tab: matches(TAB_KEY), ...SHAPES.reader.fields });
    this.#local(() => this.#reader.set(tab, { card, url }));
  }

  // ---- reading ----

  /**
   * The document as plain JSON, every entry checked against its shape: whatever a peer wrote
   * that does not fit (wrong types, out of range, oversized, unknown keys) is left out.
   * @returns {{tabs: Record<string, {url: string, title: string, order: number, by: string}>,
   *   active: string | null,
   *   scroll: Record<string, {fraction: number, block: number, offset: number, by: string, n: number}>,
   *   find: Record<string, {query: string, match: number, count: number, by: string}>,
   *   highlights: Record<string, {url: string, block: number, start: number, end: number, quote: string, note: string, color: string, by: string}>,
   *   bookmarks: Record<string, {url: string, title: string, created: number, by: string}>,
   *   follow: {phone_follows_pc: boolean, pc_follows_phone: boolean},
   *   reader: Record<string, {card: string, url: string}>}}
   */
  state() {
    const active = this.#view.get('active');
    /** @type {Record<string, boolean>} */
    const follow = {};
    for (const direction of FOLLOW) {
      const on = this.#follow.get(direction);
      follow[direction] = typeof on === 'boolean' ? on : true;
    }
    return /** @type {any} */ ({
      tabs: entries(this.#tabs, TAB_KEY, (v) => fromRecord(SHAPES.tab, v)),
      active: typeof active === 'string' && TAB_KEY.test(active) ? active : null,
      scroll: entries(this.#scrolls, TAB_KEY, (v) => fromValue(SHAPES.scroll, v)),
      find: entries(this.#finds, TAB_KEY, (v) => fromValue(SHAPES.find, v)),
      highlights: entries(this.#highlights, ID, (v) => fromRecord(SHAPES.highlight, v)),
      bookmarks: entries(this.#bookmarks, ID, (v) => fromRecord(SHAPES.bookmark, v)),
      follow,
      reader: entries(this.#reader, TAB_KEY, (v) => fromValue(SHAPES.reader, v)),
    });
  }

  // ---- updates ----

  /**
   * Apply a Yjs update v1 from elsewhere (a peer: origin 'remote'; stored state: any other
   * origin but 'local'). The update is parsed in full first, so that a damaged one is refused
   * before it touches the document.
   * @param {Uint8Array} update @param {string} [origin]
   */
  applyUpdate(update, origin = 'remote') {
    if (!(update instanceof Uint8Array) || update.length === 0) throw new SyncError('bad_update', 'The update is empty or not bytes.');
    try {
      Y.decodeUpdate(update);
    } catch {
      throw new SyncError('bad_update', 'The update is damaged: it is not a Yjs update.');
    }
    try {
      Y.applyUpdate(this.#doc, update, origin);
    } catch {
      throw new SyncError('bad_update', 'The update could not be applied to the document.');
    }
  }

  encodeState() {
    return Y.encodeStateAsUpdate(this.#doc);
  }

  stateVector() {
    return Y.encodeStateVector(this.#doc);
  }

  /** What a peer with this state vector lacks (y-protocols step 2). @param {Uint8Array} stateVector */
  encodeDiff(stateVector) {
    if (!(stateVector instanceof Uint8Array)) throw new SyncError('bad_update', 'The state vector is not bytes.');
    try {
      Y.decodeStateVector(stateVector);
      return Y.encodeStateAsUpdate(this.#doc, stateVector);
    } catch {
      throw new SyncError('bad_update', 'The state vector is damaged.');
    }
  }

  /** @param {(state: ReturnType<SyncDoc['state']>, info: {local: boolean}) => void} listener @returns {() => void} */
  onChange(listener) {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** @param {(update: Uint8Array) => void} listener @returns {() => void} */
  onLocalUpdate(listener) {
    this.#updateListeners.add(listener);
    return () => this.#updateListeners.delete(listener);
  }

  destroy() {
    this.#changeListeners.clear();
    this.#updateListeners.clear();
    this.#doc.destroy();
  }
}

/**
 * A root map's entries whose key matches `key` and whose value `read` accepts.
 * @template T
 * @param {import('yjs').Map<unknown>} map @param {RegExp} key @param {(value: unknown) => T | null} read
 * @returns {Record<string, T>}
 */
function entries(map, key, read) {
  /** @type {Record<string, T>} */
  const out = {};
  map.forEach((value, name) => {
    // The key patterns admit neither "__proto__" nor any other special name.
    if (!key.test(name)) return;
    const entry = read(value);
    if (entry !== null) out[name] = entry;
  });
  return out;
}
