// The text of the reader view's blocks: find matches, and the pieces a block's text is cut
// into so that highlights and find matches can be marked in it (docs/SYNC.md "Reader view",
// "Applying remote state").
//
// Offsets count UTF-16 code units in a block's normalized text `t` (what String.length and the
// DOM count), the same offsets highlights store. Find is case-insensitive over every block's
// `t` (an image block's is its alt text), matches do not overlap and are numbered in block
// order: the extension (sync_content.js) searches the same blocks the same way, so both sides
// count the same matches and a match index means the same text on both.

/**
 * @typedef {{block: number, start: number, end: number}} Match
 * @typedef {{id: string, start: number, end: number, color: string, note: boolean}} Mark
 * @typedef {{text: string, highlight: Mark | null, match: number, current: boolean}} Piece
 */

/**
 * Lower case that keeps every offset: a character whose lower case has another length (a few
 * do) stays as it is. The extension (sync_content.js) lowers the same way.
 * @param {string} text
 */
export function lower(text) {
  const quick = text.toLowerCase();
  if (quick.length === text.length) return quick;
  let out = '';
  for (const c of text) {
    const l = c.toLowerCase();
    out += l.length === c.length ? l : c;
  }
  return out;
}

/**
 * Every match of `query` in the blocks, in order: the non-overlapping occurrences in each
 * block's `t`, left to right, case-insensitive.
 * @param {{t: string}[]} blocks @param {string} query @returns {Match[]}
 */
export function findMatches(blocks, query) {
  /** @type {Match[]} */
  const out = [];
  if (query === '') return out;
  const needle = lower(query);
  blocks.forEach((block, index) => {
    const hay = lower(block.t);
    for (let at = hay.indexOf(needle); at !== -1; at = hay.indexOf(needle, at + needle.length)) {
      out.push({ block: index, start: at, end: at + needle.length });
    }
  });
  return out;
}

/**
 * Cut `text` where highlights and matches begin and end. Where highlights overlap, the one that
 * starts later (then the shorter) is on top.
 * @param {string} text
 * @param {Mark[]} highlights
 * @param {{start: number, end: number, index: number}[]} matches
 * @param {number} current the index of the current match (-1: none)
 * @returns {Piece[]}
 */
export function pieces(text, highlights, matches, current) {
  const length = text.length;
  const clip = (/** @type {number} */ n) => Math.max(0, Math.min(length, n));
  const marks = highlights.map((h) => ({ ...h, start: clip(h.start), end: clip(h.end) })).filter((h) => h.end > h.start)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const found = matches.map((m) => ({ ...m, start: clip(m.start), end: clip(m.end) })).filter((m) => m.end > m.start);
  const cuts = new Set([0, length]);
  for (const m of [...marks, ...found]) {
    cuts.add(m.start);
    cuts.add(m.end);
  }
  const points = [...cuts].sort((a, b) => a - b);
  /** @type {Piece[]} */
  const out = [];
  for (let i = 0; i + 1 < points.length; i += 1) {
    const [start, end] = [points[i], points[i + 1]];
    let highlight = null;
    for (const mark of marks) if (mark.start <= start && mark.end >= end) highlight = mark;
    const match = found.find((m) => m.start <= start && m.end >= end);
    out.push({ text: text.slice(start, end), highlight, match: match?.index ?? -1, current: match !== undefined && match.index === current });
  }
  return out;
}
