// A file transfer on the screen: name, size, a progress bar, cancel while it runs, and for a
// file received and verified, "Save" (a download of the stored file).

import { h } from './dom.js';

/** @param {number} bytes */
export function sizeText(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(0)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

const RUNNING = new Set(['hashing', 'offered', 'transferring']);

/**
 * Create or update the row of one transfer in `list`.
 * @param {HTMLElement} list
 * @param {import('../net/files.js').TransferView} view
 * @param {(id: string) => void} onCancel
 */
export function showTransfer(list, view, onCancel) {
  let row = /** @type {HTMLElement | null} */ (list.querySelector(`li[data-id="${view.id}"]`));
  if (row === null && view.direction === 'out') {
    // The sender's row had a provisional id while the file was being hashed.
    row = list.querySelector(`li[data-name="${CSS.escape(view.name)}"][data-state="hashing"]`);
  }
  if (row === null) {
    row = h(`li.transfer.${view.direction}`);
    list.prepend(row);
  }
  row.dataset.id = view.id;
  row.dataset.name = view.name;
  row.dataset.state = view.state;
  row.dataset.done = String(view.done);
  const percent = view.size ? Math.floor((view.done * 100) / view.size) : 100;
  const words = {
    hashing: 'Preparing…', offered: view.message, transferring: `${percent} % of ${sizeText(view.size)}`,
    completed: view.message, cancelled: view.message, failed: view.message, rejected: view.message, interrupted: view.message,
  }[view.state];
  const progress = h('progress', { max: String(view.size || 1), value: String(view.done), 'aria-label': `${view.name}: ${percent} %` });
  row.replaceChildren(...[
    h('p.transfer-name', {}, `${view.direction === 'out' ? '↑' : '↓'} ${view.name}`),
    RUNNING.has(view.state) ? progress : null,
    h('span.transfer-state', {}, words || ''),
    RUNNING.has(view.state) && view.state !== 'hashing'
      ? h('button.secondary.cancel', { type: 'button', onclick: () => onCancel(view.id) }, 'Cancel') : null,
    view.state === 'completed' && view.blob
      ? h('a.button.primary.save-file', { href: URL.createObjectURL(view.blob), download: view.name }, `Save (${sizeText(view.size)})`) : null,
  ].filter((x) => x !== null));
}
