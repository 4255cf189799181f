// The reader view's sheets (ui/reader.js opens one at a time, from the bottom): the PC's tabs,
// the bookmarks, the sync switches, and one highlight's note and color. Each builds its
// content from the document's state and calls back with the operation to make; nothing here
// writes to the document itself.
//
// Everything from the document (titles, addresses, notes) goes in as text (dom.js).

import { COLORS } from '../core/sync_doc.js';
import { h } from './dom.js';

/** @typedef {import('../net/sync.js').SyncState} SyncState */

const COLOR_WORDS = { yellow: 'Yellow', green: 'Green', blue: 'Blue', pink: 'Pink' };

/** @param {string} by */
const byWords = (by) => (by === 'phone' ? 'added on this phone' : 'added on the PC');

/**
 * The PC's tabs: tap one to show it on both sides, × to close it; open an address as a new tab.
 * @param {SyncState} state
 * @param {string | null} shown the tab the phone shows
 * @param {{onShow: (key: string) => void, onClose: (key: string) => void, onOpen: (url: string) => void}} actions
 */
export function tabsSheet(state, shown, { onShow, onClose, onOpen }) {
  const tabs = Object.entries(state.tabs).sort(([, a], [, b]) => a.order - b.order);
  const list = h('ul.sheet-list#tab-list', {}, ...tabs.map(([key, tab]) => h('li.tab-row', { 'data-tab': key },
    h('button.tab-open', { type: 'button', onclick: () => onShow(key), 'aria-current': key === shown ? 'true' : 'false' },
      h('span.row-title', {}, tab.title || tab.url),
      h('span.row-url', {}, tab.url),
      key === state.active ? h('span.row-note', {}, 'active on the PC') : null),
    h('button.tab-close.icon', { type: 'button', 'aria-label': `Close ${tab.title || tab.url}`, onclick: () => onClose(key) }, '×'))));
  const input = /** @type {HTMLInputElement} */ (h('input#tab-url', { type: 'url', inputmode: 'url', placeholder: 'https://…',
    'aria-label': 'Address to open on the PC', autocomplete: 'off' }));
  const form = h('form.tab-new', {
    onsubmit: (event) => {
      event.preventDefault();
      const url = input.value.trim();
      if (!/^https?:\/\//i.test(url)) {
        input.setCustomValidity('An address that starts with http:// or https://');
        input.reportValidity();
        return;
      }
      onOpen(url);
      input.value = '';
    },
  }, input, h('button.primary#tab-open-url', { type: 'submit' }, 'Open on PC'));
  input.addEventListener('input', () => input.setCustomValidity(''));
  return [tabs.length ? list : h('p.hint', {}, 'No tabs are shared.'), form];
}

/**
 * Bookmarks of this session, both sides'; add the page shown, rename, delete.
 * @param {SyncState} state
 * @param {{onAdd: () => void, onRename: (id: string, title: string) => void, onDelete: (id: string) => void,
 *   canAdd: boolean}} actions
 */
export function bookmarksSheet(state, { onAdd, onRename, onDelete, canAdd }) {
  const marks = Object.entries(state.bookmarks).sort(([, a], [, b]) => a.created - b.created);
  const rows = marks.map(([id, mark]) => {
    const row = h('li.bookmark', { 'data-bookmark': id });
    const view = () => {
      row.replaceChildren(
        h('span.row-title', {}, mark.title || mark.url),
        h('span.row-url', {}, mark.url),
        h('span.row-note', {}, byWords(mark.by)),
        h('div.row-actions', {},
          h('button.secondary.rename', { type: 'button', onclick: edit }, 'Rename'),
          h('button.secondary.delete', { type: 'button', onclick: () => onDelete(id) }, 'Delete')));
    };
    const edit = () => {
      const input = /** @type {HTMLInputElement} */ (h('input.rename-input', { type: 'text', maxlength: '1024',
        'aria-label': 'New name of the bookmark' }));
      input.value = mark.title;
      row.replaceChildren(h('form.rename-form', {
        onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) onRename(id, input.value.trim());
        },
      }, input, h('div.row-actions', {},
        h('button.primary.save', { type: 'submit' }, 'Save'),
        h('button.secondary.cancel', { type: 'button', onclick: view }, 'Cancel'))));
      input.focus();
    };
    view();
    return row;
  });
  return [
    h('button.primary#bookmark-add', { type: 'button', onclick: onAdd, disabled: !canAdd }, 'Bookmark this page'),
    rows.length ? h('ul.sheet-list#bookmark-list', {}, ...rows) : h('p.hint', {}, 'No bookmarks yet.'),
  ];
}

/**
 * The two follow switches (docs/SYNC.md "Applying remote state") and the end of the session.
 * @param {SyncState} state
 * @param {string} pcName
 * @param {{onFollow: (direction: string, on: boolean) => void, onStop: () => void, onBack: () => void}} actions
 */
export function syncSheet(state, pcName, { onFollow, onStop, onBack }) {
  /** @param {string} id @param {'phone_follows_pc' | 'pc_follows_phone'} direction @param {string} label @param {string} hint */
  const toggle = (id, direction, label, hint) => {
    const on = state.follow[direction];
    return h(`button.switch#${id}`, { type: 'button', role: 'switch', 'aria-checked': String(on),
      onclick: () => onFollow(direction, !on) },
    h('span.switch-text', {}, h('strong', {}, label), h('span', {}, hint)),
    h('span.switch-knob', { 'aria-hidden': 'true' }));
  };
  return [
    toggle('follow-pc', 'phone_follows_pc', 'Phone follows PC', `Scroll, find and tabs on ${pcName} move this view.`),
    toggle('follow-phone', 'pc_follows_phone', 'PC follows phone', `Scroll and find here move the tab on ${pcName}.`),
    h('p.hint', {}, 'Highlights, notes and bookmarks are always shared.'),
    h('button.secondary#reader-home', { type: 'button', onclick: onBack }, 'Main screen'),
    h('button.danger#sync-stop', { type: 'button', onclick: onStop }, 'Stop sync'),
  ];
}

/**
 * One highlight: its quote, note and color; delete.
 * @param {{quote: string, note: string, color: string, by: string}} mark
 * @param {string} id
 * @param {string | null} draft the note as being written, if the sheet is redrawn meanwhile
 * @param {string} says what the last action did ("Saved.")
 * @param {{onNote: (note: string) => void, onColor: (color: string) => void, onDelete: () => void}} actions
 */
export function highlightSheet(mark, id, draft, says, { onNote, onColor, onDelete }) {
  const note = /** @type {HTMLTextAreaElement} */ (h('textarea#hl-note', { rows: '3', maxlength: '4000',
    placeholder: 'A note about this passage', 'aria-label': 'Note', 'data-for': id }));
  note.value = draft ?? mark.note;
  const saved = h('span.row-note#hl-saved', { role: 'status' }, says);
  note.addEventListener('input', () => { saved.textContent = ''; });
  return [
    h('blockquote.hl-quote', { 'data-color': mark.color }, mark.quote),
    h('p.row-note', {}, byWords(mark.by)),
    h('div.colors', { role: 'group', 'aria-label': 'Color' }, ...COLORS.map((color) => h(`button.color-dot`, {
      type: 'button', 'data-color': color, 'aria-pressed': String(color === mark.color),
      'aria-label': COLOR_WORDS[/** @type {keyof typeof COLOR_WORDS} */ (color)], onclick: () => onColor(color),
    }))),
    note,
    saved,
    h('div.row-actions', {},
      h('button.primary#hl-save', { type: 'button', onclick: () => onNote(note.value) }, 'Save note'),
      h('button.secondary#hl-delete', { type: 'button', onclick: onDelete }, 'Delete')),
  ];
}
