// Scroll of the reader view (docs/SYNC.md "The document", `scroll`; "Applying remote state"):
// where the view is, as the block at its top, how far into that block (0..1) and the fraction of
// the page; a remote position applied; the phone's own reported at most 10 times a second plus a
// final one when scrolling stops, and never what a remote position caused (300 ms of quiet
// after applying one: no echo).
//
// `document.documentElement.dataset.peerbeamBlock` is the block at the top (tests read it).

const REPORT_EVERY_MS = 100;
const FINAL_REPORT_MS = 160;
export const QUIET_MS = 300;

/** @typedef {{block: number, offset: number, fraction: number}} Position */

export class ReaderScroll {
  /** @type {HTMLElement[]} block index -> its element */ #blocks = [];
  /** @type {HTMLElement[]} the blocks with a size, in order (to find the top one) */ #visible = [];
  #quietUntil = 0;
  #lastReport = 0;
  #lastPosition = '';
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #reportTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #finalTimer;

  /** @param {(position: Position) => void} report the phone's own position, to write */
  constructor(report) {
    this.report = report;
  }

  /** The blocks now shown (none: []). @param {HTMLElement[]} blocks */
  setBlocks(blocks) {
    this.#blocks = blocks;
    this.#visible = blocks.filter((el) => el.getClientRects().length > 0 && el.getBoundingClientRect().height > 0);
    this.updateTop();
  }

  /** Where the blocks start showing: under the sticky status bar. */
  viewTop() {
    const bar = document.getElementById('status');
    const top = bar && !bar.hidden ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
    // A block scrolled into view (find, tests) lands just under the bar (style.css scroll-margin-top).
    document.documentElement.style.setProperty('--reader-top', `${Math.ceil(top)}px`);
    return top;
  }

  /** The block at the top of the view and how far into it. @returns {Position | null} */
  position() {
    const visible = this.#visible;
    if (visible.length === 0) return null;
    const top = this.viewTop() + 1;
    let lo = 0;
    let hi = visible.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (visible[mid].getBoundingClientRect().bottom > top) hi = mid;
      else lo = mid + 1;
    }
    const el = visible[lo];
    const rect = el.getBoundingClientRect();
    const offset = rect.height > 0 ? Math.min(1, Math.max(0, (top - 1 - rect.top) / rect.height)) : 0;
    const range = document.documentElement.scrollHeight - innerHeight;
    const fraction = range > 0 ? Math.min(1, Math.max(0, scrollY / range)) : 0;
    return { block: Number(el.dataset.block), offset: Math.round(offset * 1e4) / 1e4, fraction: Math.round(fraction * 1e4) / 1e4 };
  }

  updateTop() {
    const position = this.position();
    if (position === null) delete document.documentElement.dataset.peerbeamBlock;
    else document.documentElement.dataset.peerbeamBlock = String(position.block);
    return position;
  }

  /** What follows now is not the user's scrolling (a remote find revealing its match). */
  hush() {
    this.#quietUntil = performance.now() + QUIET_MS;
  }

  /** Put a remote position at the top of the view: its block, else its fraction. @param {Position} scroll */
  apply(scroll) {
    const el = this.#blocks[scroll.block];
    let y;
    if (el && el.getClientRects().length > 0 && el.getBoundingClientRect().height > 0) {
      const rect = el.getBoundingClientRect();
      y = scrollY + rect.top + scroll.offset * rect.height - this.viewTop();
    } else {
      y = scroll.fraction * (document.documentElement.scrollHeight - innerHeight);
    }
    this.hush();
    window.scrollTo({ top: Math.max(0, y), behavior: 'instant' });
    this.#lastPosition = JSON.stringify(this.updateTop());
  }

  /** A scroll event of the window. */
  onScroll() {
    this.updateTop();
    const now = performance.now();
    if (now < this.#quietUntil) {
      // Caused by what was just applied: not ours to report. Its last events extend the quiet.
      this.#quietUntil = Math.max(this.#quietUntil, now + 50);
      this.#lastPosition = JSON.stringify(this.position());
      return;
    }
    if (now - this.#lastReport >= REPORT_EVERY_MS) this.#report();
    else if (this.#reportTimer === undefined) {
      this.#reportTimer = setTimeout(() => {
        this.#reportTimer = undefined;
        this.#report();
      }, this.#lastReport + REPORT_EVERY_MS - now);
    }
    clearTimeout(this.#finalTimer);
    this.#finalTimer = setTimeout(() => this.#report(), FINAL_REPORT_MS);
  }

  #report() {
    if (performance.now() < this.#quietUntil) return;
    const position = this.position();
    if (position === null) return;
    const key = JSON.stringify(position);
    this.#lastReport = performance.now();
    if (key === this.#lastPosition) return;
    this.#lastPosition = key;
    this.report(position);
  }

  dispose() {
    clearTimeout(this.#reportTimer);
    clearTimeout(this.#finalTimer);
    delete document.documentElement.dataset.peerbeamBlock;
  }
}
