// Page sync on the main screen of a connected phone: "Follow my PC" (sync.start), and while a
// session is held, "Open the synced page". What the PC answered (a refusal, the end of the
// session) is said under the buttons.

import { h } from './dom.js';

/**
 * @param {object} options
 * @param {import('../net/sync.js').PhoneSync} options.sync
 * @param {string} options.pcName
 * @param {() => void} options.onOpen show the reader view
 * @param {string} [options.note] a sentence to show at once (e.g. why the last session ended)
 * @returns {HTMLElement}
 */
export function syncEntry({ sync, pcName, onOpen, note = '' }) {
  const follow = /** @type {HTMLButtonElement} */ (h('button.secondary#follow', { type: 'button', onclick: () => sync.follow() }));
  const open = h('button.primary#open-reader', { type: 'button', onclick: onOpen }, 'Open the synced page');
  const status = h('p#sync-status', { role: 'status' }, note);
  const section = h('section.sync-entry#sync-entry', {}, open, follow, status);
  const draw = () => {
    open.hidden = sync.docId === null;
    follow.disabled = sync.starting;
    follow.textContent = sync.starting ? `Asking ${pcName}…` : 'Follow my PC';
  };
  draw();
  const unsubscribe = sync.subscribe((event) => {
    if (!section.isConnected) {
      unsubscribe();
      return;
    }
    if (event.kind === 'notice') status.textContent = event.text;
    if (event.kind === 'starting' && event.on) status.textContent = '';
    draw();
  });
  return section;
}
