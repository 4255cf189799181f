// The reader view's sheet: one panel at a time, from the bottom — the PC's tabs, the
// bookmarks, the sync switches, or one highlight — built by reader_panels.js from the
// document's state, with the operations its buttons make (by = "phone").
//
// A sheet follows the document as it changes, except under the user's typing (a rename, an
// address, a note): then it waits for the next redraw, and a note being written survives it.

import { randomId } from '../net/sync.js';
import { fill, h } from './dom.js';
import { bookmarksSheet, highlightSheet, syncSheet, tabsSheet } from './reader_panels.js';

/**
 * @typedef {import('../net/sync.js').SyncState} SyncState
 * @typedef {{kind: 'tabs' | 'bookmarks' | 'sync' | 'highlight', id?: string}} Sheet
 * @typedef {{tab: string | null, url: string | null, title: string}} Page the page the view shows
 */

export class ReaderSheets {
  /** @type {Sheet | null} */ #open = null;
  /** What the open sheet says about its last action ("Saved."). */ #says = '';

  /**
   * @param {object} options
   * @param {import('../net/sync.js').PhoneSync} options.sync
   * @param {string} options.pcName
   * @param {() => Page} options.page
   * @param {(key: string) => void} options.onShowTab a tab chosen here
   * @param {() => void} options.onBack
   */
  constructor({ sync, pcName, page, onShowTab, onBack }) {
    this.sync = sync;
    this.pcName = pcName;
    this.page = page;
    this.onShowTab = onShowTab;
    this.onBack = onBack;
    this.title = h('h2.sheet-title#sheet-title');
    this.body = h('div.sheet-body#sheet-body');
    this.element = h('section.sheet#sheet', { hidden: true, role: 'dialog', 'aria-labelledby': 'sheet-title' },
      h('div.sheet-head', {}, this.title,
        h('button.icon#sheet-close', { type: 'button', 'aria-label': 'Close', onclick: () => this.close() }, '×')),
      this.body);
  }

  get kind() {
    return this.#open?.kind ?? null;
  }

  /** @param {Sheet} sheet */
  open(sheet) {
    this.#open = sheet;
    this.#says = '';
    this.element.dataset.kind = sheet.kind;
    this.element.hidden = false;
    this.refresh(this.sync.state(), true);
  }

  close() {
    this.#open = null;
    this.element.hidden = true;
    delete this.element.dataset.kind;
    this.body.replaceChildren();
  }

  /** @param {SyncState | null} state @param {boolean} [force] */
  refresh(state, force = false) {
    const sheet = this.#open;
    if (sheet === null || state === null) return;
    const active = document.activeElement;
    const typing = this.element.contains(active) && /^(INPUT|TEXTAREA)$/.test(active?.tagName ?? '');
    if (typing && !force) return;
    /** The sheet's own buttons: the operation, then the sheet as it is now. @template {unknown[]} A @param {(...args: A) => void} action */
    const then = (action) => (/** @type {A} */ ...args) => {
      action(...args);
      if (this.#open === sheet) this.refresh(this.sync.state(), true);
    };
    const page = this.page();
    if (sheet.kind === 'tabs') {
      this.title.textContent = `Tabs on ${this.pcName}`;
      fill(this.body, ...tabsSheet(state, page.tab, {
        onShow: (key) => {
          this.onShowTab(key);
          this.close();
        },
        onClose: then((key) => this.sync.op('closeTab', key)),
        onOpen: then((url) => {
          // After the last tab: the PC opens it at the end of its window.
          const last = Math.max(0, ...Object.values(this.sync.state()?.tabs ?? state.tabs).map((t) => t.order));
          this.sync.op('openTab', randomId(), url, url, last + 1, 'phone');
        }),
      }));
    } else if (sheet.kind === 'bookmarks') {
      this.title.textContent = 'Bookmarks';
      fill(this.body, ...bookmarksSheet(state, {
        canAdd: page.url !== null,
        onAdd: then(() => {
          if (page.url !== null) {
            this.sync.op('addBookmark', randomId(), page.url, page.title.slice(0, 1024), Math.floor(Date.now() / 1000), 'phone');
          }
        }),
        onRename: then((id, title) => this.sync.op('renameBookmark', id, title.slice(0, 1024))),
        onDelete: then((id) => this.sync.op('deleteBookmark', id)),
      }));
    } else if (sheet.kind === 'sync') {
      this.title.textContent = `Sync with ${this.pcName}`;
      fill(this.body, ...syncSheet(state, this.pcName, {
        onFollow: then((direction, on) => this.sync.op('setFollow', direction, on)),
        onStop: () => this.sync.stop(),
        onBack: () => this.onBack(),
      }));
    } else {
      this.#highlight(state, /** @type {string} */ (sheet.id));
    }
  }

  /** @param {SyncState} state @param {string} id */
  #highlight(state, id) {
    const mark = state.highlights[id];
    if (!mark) {
      this.close(); // deleted, here or on the PC
      return;
    }
    this.title.textContent = 'Highlight';
    const open = /** @type {HTMLTextAreaElement | null} */ (this.body.querySelector('#hl-note'));
    const draft = open !== null && open.dataset.for === id ? open.value : null;
    fill(this.body, ...highlightSheet(mark, id, draft, this.#says, {
      onNote: (note) => {
        this.#says = 'Saved.';
        this.sync.op('editHighlight', id, note.slice(0, 4000), null);
        this.refresh(this.sync.state(), true);
      },
      onColor: (color) => this.sync.op('editHighlight', id, null, color),
      onDelete: () => {
        this.sync.op('deleteHighlight', id);
        this.close();
      },
    }));
  }
}
