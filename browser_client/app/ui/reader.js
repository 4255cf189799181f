// The reader view of page sync (docs/SYNC.md "Reader view", "Applying remote state"): the
// synced tab's title and blocks at phone size, with the PC's scroll position, find and
// highlights applied to it, and the phone's own scroll (reader_scroll.js), find, highlights,
// bookmarks and tabs (reader_sheets.js) written back to the shared document (net/sync.js) with
// by = "phone".
//
// * The tab shown is the document's active tab while "Phone follows PC" is on; otherwise the one
//   last chosen here. Remote scroll and find apply only while following (and catch up when it
//   is switched on again); highlights and bookmarks always.
// * Find searches the blocks' text as the extension does (reader_text.js): every match marked,
//   the current one stronger and scrolled into view.
// * A highlight: select text inside one block, tap "Highlight"; its offsets count in that
//   block's text. Tap a highlight for its note, color, delete.
//
// The view owns <main> while it is shown (body[data-screen="reader"]); another screen
// replacing it ends it (it notices on its next event), or dispose() does.

import { randomId } from '../net/sync.js';
import { fill, h } from './dom.js';
import { buildBlocks, markText } from './reader_blocks.js';
import { ReaderScroll } from './reader_scroll.js';
import { ReaderSheets } from './reader_sheets.js';
import { findMatches, pieces } from './reader_text.js';

const FIND_DELAY_MS = 200;

/**
 * @typedef {import('../net/sync.js').SyncState} SyncState
 * @typedef {import('../net/sync.js').ReaderView} Loaded
 * @typedef {import('./reader_text.js').Match} Match
 */

export class ReaderView {
  /** @type {string | null} the tab shown */ #tab = null;
  /** @type {string | null | undefined} the reader card shown (undefined: none loaded yet) */ #card = undefined;
  /** @type {Loaded | null} */ #loaded = null;
  /** @type {Map<string, string>} image source -> blob: URL */ #urls = new Map();
  /** @type {HTMLElement[]} block index -> the element holding its text */ #texts = [];
  /** @type {string[]} what each block shows now (highlights, matches) */ #shownAs = [];
  /** @type {Match[]} */ #matches = [];
  #current = -1;
  #query = '';
  /** @type {string | null} */ #appliedScroll = null;
  /** @type {string | null} */ #appliedFind = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #findTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #hideSelectTimer;
  /** @type {{block: number, start: number, end: number} | null} */ #selected = null;
  #loading = 0;
  #wasFollowing = false;
  #disposed = false;
  /** @type {(() => void)[]} */ #cleanup = [];

  /**
   * @param {object} options
   * @param {import('../net/sync.js').PhoneSync} options.sync
   * @param {string} options.pcName
   * @param {() => void} options.onBack back to the main screen
   */
  constructor({ sync, pcName, onBack }) {
    this.sync = sync;
    this.pcName = pcName;
    this.onBack = onBack;
    this.main = /** @type {HTMLElement} */ (document.getElementById('screen'));
    this.scroll = new ReaderScroll((p) => {
      if (this.#tab !== null) this.sync.op('scroll', this.#tab, p.fraction, p.block, p.offset, 'phone');
    });
    this.sheets = new ReaderSheets({
      sync, pcName, onBack, page: () => this.#page(),
      onShowTab: (key) => {
        this.#tab = key;
        this.sync.op('setActive', key);
      },
    });
    this.root = h('div.reader#reader');
    this.notice = h('p.sync-notice#sync-notice', { role: 'status' });
    this.following = h('span.follow-state#follow-state');
    this.title = h('h1.reader-title#reader-title');
    this.url = h('p.reader-url#reader-url');
    this.article = h('article.reader-blocks#reader-blocks', { onclick: (/** @type {Event} */ e) => this.#onTap(e) });
    this.waiting = h('p.hint#reader-waiting', { hidden: true });
    this.truncated = h('p.reader-truncated#reader-truncated', { hidden: true }, 'Truncated: the rest is on the PC.');
    this.findInput = /** @type {HTMLInputElement} */ (h('input#find-input', { type: 'search', enterkeyhint: 'search',
      placeholder: 'Find in page', 'aria-label': 'Find in page', autocomplete: 'off', maxlength: '256' }));
    this.findCount = h('span.find-count#find-count', { role: 'status' });
    this.findBar = h('form.find-bar#find-bar', { hidden: true, onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); this.#step(1); } },
      this.findInput, this.findCount,
      h('button.icon#find-prev', { type: 'button', 'aria-label': 'Previous match', onclick: () => this.#step(-1) }, '↑'),
      h('button.icon#find-next', { type: 'button', 'aria-label': 'Next match', onclick: () => this.#step(1) }, '↓'),
      h('button.icon#find-close', { type: 'button', 'aria-label': 'Close find', onclick: () => this.#closeFind() }, '×'));
    this.findInput.addEventListener('input', () => {
      clearTimeout(this.#findTimer);
      this.#findTimer = setTimeout(() => this.#setFind(this.findInput.value, 0, { write: true, reveal: true }), FIND_DELAY_MS);
    });
    // mousedown would take the selection away before the click (a mouse; a touch keeps it a while).
    this.highlightButton = h('button.primary.select-action#highlight', { type: 'button', hidden: true,
      onmousedown: (/** @type {Event} */ e) => e.preventDefault(), onclick: () => this.#highlightSelection() }, 'Highlight');
    this.tabsButton = h('button#bar-tabs', { type: 'button', onclick: () => this.#openSheet({ kind: 'tabs' }) }, 'Tabs');
    this.bar = h('nav.reader-bar#reader-bar', { 'aria-label': 'Reader' },
      this.tabsButton,
      h('button#bar-find', { type: 'button', onclick: () => this.#openFind() }, 'Find'),
      h('button#bar-bookmarks', { type: 'button', onclick: () => this.#openSheet({ kind: 'bookmarks' }) }, 'Bookmarks'),
      h('button#bar-sync', { type: 'button', onclick: () => this.#openSheet({ kind: 'sync' }) }, 'Sync'));
  }

  show() {
    document.body.dataset.screen = 'reader';
    delete document.body.dataset.failure;
    fill(this.root,
      h('div.reader-head', {},
        h('button.secondary.back#reader-back', { type: 'button', onclick: () => this.onBack() }, '‹ Back'),
        this.following),
      h('p.offline-hint#offline-hint', {}, `Not connected: what you do here is kept and shared when ${this.pcName} is back.`),
      this.notice, this.title, this.url, this.waiting, this.article, this.truncated,
      this.findBar, this.highlightButton, this.sheets.element, this.bar);
    fill(this.main, this.root);
    window.scrollTo(0, 0);
    this.scroll.viewTop();
    const onScroll = () => {
      if (this.#alive()) this.scroll.onScroll();
    };
    const onSelection = () => this.#onSelection();
    addEventListener('scroll', onScroll, { passive: true });
    document.addEventListener('selectionchange', onSelection);
    const unsubscribe = this.sync.subscribe((event) => this.#onSync(event));
    this.#cleanup.push(() => removeEventListener('scroll', onScroll), () => document.removeEventListener('selectionchange', onSelection),
      unsubscribe);
    this.#render(this.sync.state(), { remote: true });
  }

  /** Another screen took <main>, or the app closes the view. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const undo of this.#cleanup) undo();
    clearTimeout(this.#findTimer);
    clearTimeout(this.#hideSelectTimer);
    this.scroll.dispose();
    this.#revoke();
  }

  get showing() {
    return !this.#disposed && this.root.isConnected;
  }

  #alive() {
    if (this.showing) return true;
    this.dispose();
    return false;
  }

  /** A sentence for the user (a refusal, an error from the PC). @param {string} text */
  say(text) {
    this.notice.textContent = text;
  }

  // -- the document --------------------------------------------------------------------------

  /** @param {import('../net/sync.js').SyncEvent} event */
  #onSync(event) {
    if (!this.#alive()) return;
    if (event.kind === 'notice') this.say(event.text);
    else if (event.kind === 'state') this.#render(event.state, { remote: !event.local });
    else if (event.kind === 'reader' && event.card === this.#card && this.#loaded === null) this.#load(event.card);
    else if (event.kind === 'link' && event.connected) this.say('');
    else if (event.kind === 'doc' && event.doc !== null) {
      // A new session replaced the document: start from its active tab.
      this.#tab = null;
      this.#card = undefined;
      this.#render(this.sync.state(), { remote: true });
    }
  }

  /** @param {SyncState | null} state */
  #follows(state) {
    return state?.follow.phone_follows_pc ?? true;
  }

  /** @param {SyncState | null} state @param {{remote: boolean}} how */
  #render(state, { remote }) {
    if (state === null) return;
    const follows = this.#follows(state);
    if (this.#loaded === null) this.#wasFollowing = follows;
    // Which tab: the PC's active one while following, else the one chosen here while it exists.
    if (follows || this.#tab === null || !(this.#tab in state.tabs)) this.#tab = state.active;
    const tab = this.#tab === null ? undefined : state.tabs[this.#tab];
    this.following.textContent = follows ? `Following ${this.pcName}` : `Not following ${this.pcName}`;
    this.following.dataset.on = String(follows);
    this.tabsButton.textContent = `Tabs (${Object.keys(state.tabs).length})`;
    this.title.textContent = tab?.title || this.#loaded?.reader.title || 'Page sync';
    this.url.textContent = tab?.url ?? '';
    const card = this.#tab === null ? null : state.reader[this.#tab]?.card ?? null;
    if (card !== this.#card) {
      this.#card = card;
      this.#load(card);
      return; // #load renders the rest once the blocks are in
    }
    this.#refreshMarks(state);
    // Following again (switched on here): catch up with the PC at once.
    if (remote || (follows && !this.#wasFollowing)) this.#applyRemote(state, follows);
    this.#wasFollowing = follows;
    this.sheets.refresh(state);
  }

  /** Show the reader view of `card`: from memory or IndexedDB, else wait for the PC. @param {string | null} card */
  async #load(card) {
    const ticket = ++this.#loading;
    this.#loaded = null;
    this.#revoke();
    this.#texts = [];
    this.#shownAs = [];
    this.#appliedScroll = null;
    this.#appliedFind = null;
    this.article.replaceChildren();
    this.scroll.setBlocks([]);
    this.truncated.hidden = true;
    this.waiting.hidden = false;
    this.waiting.textContent = card === null ? `${this.pcName} has not sent a page for this tab yet.` : `Waiting for the page from ${this.pcName}…`;
    document.body.dataset.reader = 'waiting';
    const loaded = card === null ? null : await this.sync.reader(card);
    if (ticket !== this.#loading || !this.#alive()) return;
    if (loaded === null) {
      this.sheets.refresh(this.sync.state());
      return;
    }
    this.#loaded = loaded;
    this.waiting.hidden = true;
    for (const image of loaded.images) {
      if (image.source && !this.#urls.has(image.source)) this.#urls.set(image.source, URL.createObjectURL(image.blob));
    }
    const { nodes, blocks, texts } = buildBlocks(loaded.reader, loaded.images, this.#urls);
    this.article.replaceChildren(...nodes);
    this.#texts = texts;
    this.#shownAs = texts.map(() => '');
    this.truncated.hidden = !loaded.reader.truncated;
    this.scroll.setBlocks(blocks);
    document.body.dataset.reader = 'shown';
    const state = this.sync.state();
    if (state === null) return;
    this.#refreshMarks(state);
    // Our own last position (after a reload); the PC's comes with #applyRemote while following.
    const scroll = this.#tab === null ? undefined : state.scroll[this.#tab];
    if (scroll && scroll.by === 'phone') this.scroll.apply(scroll);
    this.#applyRemote(state, this.#follows(state));
    this.sheets.refresh(state);
  }

  #revoke() {
    for (const url of this.#urls.values()) URL.revokeObjectURL(url);
    this.#urls.clear();
  }

  /** The page shown: its tab, the url its highlights and bookmarks record, its title. */
  #page() {
    const state = this.sync.state();
    const tab = this.#tab;
    const fallback = this.#loaded?.reader.url ?? null;
    const url = state === null || tab === null ? fallback : state.reader[tab]?.url ?? state.tabs[tab]?.url ?? fallback;
    const title = (state !== null && tab !== null && state.tabs[tab]?.title) || this.#loaded?.reader.title || url || '';
    return { tab, url, title };
  }

  /** The addresses the shown page goes by (the tab's, the reader card's). @param {SyncState} state */
  #pageUrls(state) {
    const urls = new Set();
    if (this.#tab !== null) {
      if (state.tabs[this.#tab]) urls.add(state.tabs[this.#tab].url);
      if (state.reader[this.#tab]) urls.add(state.reader[this.#tab].url);
    }
    if (this.#loaded) urls.add(this.#loaded.reader.url);
    return urls;
  }

  /** Re-draw the blocks whose highlights or find matches changed. @param {SyncState} state */
  #refreshMarks(state) {
    if (this.#loaded === null) return;
    const urls = this.#pageUrls(state);
    /** @type {Map<number, import('./reader_text.js').Mark[]>} */
    const byBlock = new Map();
    for (const [id, mark] of Object.entries(state.highlights)) {
      if (!urls.has(mark.url)) continue;
      const list = byBlock.get(mark.block) ?? [];
      list.push({ id, start: mark.start, end: mark.end, color: mark.color, note: mark.note !== '' });
      byBlock.set(mark.block, list);
    }
    /** @type {Map<number, {start: number, end: number, index: number}[]>} */
    const found = new Map();
    this.#matches.forEach((m, index) => {
      const list = found.get(m.block) ?? [];
      list.push({ start: m.start, end: m.end, index });
      found.set(m.block, list);
    });
    const blocks = this.#loaded.reader.blocks;
    this.#texts.forEach((el, index) => {
      const marks = byBlock.get(index) ?? [];
      const matches = found.get(index) ?? [];
      const current = matches.some((m) => m.index === this.#current) ? this.#current : -1;
      const key = JSON.stringify([marks, matches, current]);
      if (key === this.#shownAs[index]) return;
      this.#shownAs[index] = key;
      markText(el, pieces(blocks[index].t, marks, matches, current));
    });
  }

  /** The PC's scroll and find, while following. @param {SyncState} state @param {boolean} follows */
  #applyRemote(state, follows) {
    if (!follows || this.#tab === null || this.#loaded === null) return;
    const scroll = state.scroll[this.#tab];
    if (scroll && scroll.by === 'pc') {
      const key = `${scroll.n}:${scroll.block}:${scroll.offset}`;
      if (key !== this.#appliedScroll) {
        this.#appliedScroll = key;
        this.scroll.apply(scroll);
      }
    }
    const find = state.find[this.#tab];
    if (find && find.by === 'pc') {
      const key = JSON.stringify(find);
      if (key !== this.#appliedFind) {
        this.#appliedFind = key;
        this.findBar.hidden = find.query === '';
        this.findInput.value = find.query;
        this.#setFind(find.query, find.match, { write: false, reveal: find.query !== '', quiet: true });
      }
    }
  }

  // -- find ----------------------------------------------------------------------------------

  #openFind() {
    this.sheets.close();
    this.findBar.hidden = false;
    this.findInput.focus();
  }

  #closeFind() {
    this.findBar.hidden = true;
    this.findInput.value = '';
    if (this.#query !== '') this.#setFind('', -1, { write: true, reveal: false });
  }

  /** Next (1) or previous (-1) match; a query typed but not searched yet is searched. @param {number} delta */
  #step(delta) {
    clearTimeout(this.#findTimer);
    if (this.findInput.value !== this.#query) {
      this.#setFind(this.findInput.value, 0, { write: true, reveal: true });
      return;
    }
    const count = this.#matches.length;
    if (count === 0) return;
    this.#setFind(this.#query, (this.#current + delta + count) % count, { write: true, reveal: true });
  }

  /**
   * @param {string} query @param {number} current
   * @param {{write: boolean, reveal: boolean, quiet?: boolean}} how quiet: the scroll it causes is
   *   not the user's (a remote find), so it is not reported
   */
  #setFind(query, current, { write, reveal, quiet = false }) {
    this.#query = query;
    this.#matches = this.#loaded ? findMatches(this.#loaded.reader.blocks, query) : [];
    const count = this.#matches.length;
    this.#current = count === 0 ? -1 : Math.min(Math.max(current, 0), count - 1);
    this.findCount.textContent = query === '' ? '' : count === 0 ? 'No matches' : `${this.#current + 1} of ${count}`;
    this.findBar.dataset.count = String(count);
    this.findBar.dataset.current = String(this.#current);
    const state = this.sync.state();
    if (state) this.#refreshMarks(state);
    if (reveal && this.#current >= 0) {
      if (quiet) this.scroll.hush();
      this.article.querySelector('mark.find[data-current]')?.scrollIntoView({ block: 'center', behavior: 'instant' });
      this.scroll.updateTop();
    }
    if (write && this.#tab !== null) this.sync.op('find', this.#tab, query, this.#current, count, 'phone');
  }

  // -- highlights ------------------------------------------------------------------------------

  /** The text of a block holding a DOM node, if it is in the article. @param {Node} node */
  #textOf(node) {
    const el = node.nodeType === Node.ELEMENT_NODE ? /** @type {Element} */ (node) : node.parentElement;
    const text = /** @type {HTMLElement | null} */ (el?.closest('[data-text]') ?? null);
    return text && this.article.contains(text) ? text : null;
  }

  /** A selection inside one block offers "Highlight". */
  #onSelection() {
    if (!this.#alive()) return;
    const selection = getSelection();
    const range = selection && selection.rangeCount > 0 && !selection.isCollapsed ? selection.getRangeAt(0) : null;
    const start = range ? this.#textOf(range.startContainer) : null;
    if (range && start && start === this.#textOf(range.endContainer)) {
      const offset = (/** @type {Node} */ node, /** @type {number} */ at) => {
        const before = document.createRange();
        before.selectNodeContents(start);
        before.setEnd(node, at);
        return before.toString().length;
      };
      const from = offset(range.startContainer, range.startOffset);
      const to = offset(range.endContainer, range.endOffset);
      if (to > from) {
        clearTimeout(this.#hideSelectTimer);
        this.#selected = { block: Number(start.dataset.text), start: from, end: to };
        this.highlightButton.hidden = false;
        return;
      }
    }
    // A tap on the button may clear the selection before its click: keep it a moment.
    clearTimeout(this.#hideSelectTimer);
    this.#hideSelectTimer = setTimeout(() => {
      this.#selected = null;
      this.highlightButton.hidden = true;
    }, 400);
  }

  #highlightSelection() {
    const selected = this.#selected;
    const { url } = this.#page();
    if (selected === null || this.#loaded === null || url === null) return;
    const text = this.#loaded.reader.blocks[selected.block]?.t ?? '';
    const end = Math.min(selected.end, text.length);
    const quote = text.slice(selected.start, end).slice(0, 2000);
    const id = randomId();
    if (!this.sync.op('addHighlight', id, url, selected.block, selected.start, end, quote, '', 'yellow', 'phone')) return;
    getSelection()?.removeAllRanges();
    this.#selected = null;
    this.highlightButton.hidden = true;
    this.#openSheet({ kind: 'highlight', id });
  }

  /** A tap in the article: on a highlight, its note and color. @param {Event} event */
  #onTap(event) {
    const mark = /** @type {Element} */ (event.target).closest?.('mark.hl');
    if (!mark || !getSelection()?.isCollapsed) return;
    this.#openSheet({ kind: 'highlight', id: /** @type {HTMLElement} */ (mark).dataset.hl });
  }

  /** @param {import('./reader_sheets.js').Sheet} sheet */
  #openSheet(sheet) {
    if (sheet.kind !== 'highlight') this.findBar.hidden = true;
    this.sheets.open(sheet);
  }
}
