// The reader view's blocks as elements (docs/SYNC.md "Reader view"): headings, paragraphs,
// list items, quotes, preformatted text, and pictures — the card's thumbnail whose `source` is
// the block's `src` (a picture the card did not keep shows its alt text only). Every block
// element carries `data-block` (its index: the anchor of scroll, find and highlights); the
// element holding its text carries `data-text` (offsets count in it).
//
// Text goes in as text nodes (dom.js): nothing from the PC becomes markup.

import { h } from './dom.js';

/**
 * @param {import('../core/reader.js').ReaderText} reader
 * @param {import('../store/sync.js').SavedImage[]} images
 * @param {Map<string, string>} urls image source -> its blob: URL
 * @returns {{nodes: HTMLElement[], blocks: HTMLElement[], texts: HTMLElement[]}}
 */
export function buildBlocks(reader, images, urls) {
  /** @type {HTMLElement[]} */
  const nodes = [];
  /** @type {HTMLElement[]} */
  const blocks = [];
  /** @type {HTMLElement[]} */
  const texts = [];
  /** @type {HTMLElement | null} consecutive list items share one list */
  let list = null;
  reader.blocks.forEach((block, index) => {
    let el;
    let text;
    if (block.k === 'img') {
      const src = block.src ? urls.get(block.src) : undefined;
      const image = images.find((i) => i.source === block.src);
      text = h('figcaption', { 'data-text': String(index) }, block.t);
      el = h(`figure.rb-img${src ? '' : '.missing'}`, {},
        src && image ? h('img', { src, alt: block.t, width: String(image.width), height: String(image.height) }) : null,
        block.t ? text : null);
    } else if (block.k.startsWith('h')) {
      // The page's title is the view's h1: the article's headings go one level down.
      const level = Math.min(6, Number(block.k.slice(1)) + 1);
      el = h(`h${level}.rb-${block.k}`, { 'data-text': String(index) }, block.t);
      text = el;
    } else {
      const tag = { p: 'p', li: 'li', quote: 'blockquote', pre: 'pre' }[block.k] ?? 'p';
      el = h(`${tag}.rb-${block.k}`, { 'data-text': String(index) }, block.t);
      text = el;
    }
    el.dataset.block = String(index);
    if (block.k === 'li') {
      if (list === null) {
        list = h('ul.rb-list');
        nodes.push(list);
      }
      list.append(el);
    } else {
      list = null;
      nodes.push(el);
    }
    blocks[index] = el;
    texts[index] = text;
  });
  return { nodes, blocks, texts };
}

/**
 * A block's text again, cut into its pieces (reader_text.js): find matches and highlights as
 * <mark>s, the current match and notes marked for the styles.
 * @param {HTMLElement} el @param {import('./reader_text.js').Piece[]} pieces
 */
export function markText(el, pieces) {
  el.replaceChildren(...pieces.map((piece) => {
    /** @type {Node} */
    let node = document.createTextNode(piece.text);
    if (piece.match !== -1) {
      node = h('mark.find', { 'data-match': String(piece.match), 'data-current': piece.current ? 'true' : false }, node);
    }
    if (piece.highlight) {
      node = h('mark.hl', { 'data-hl': piece.highlight.id, 'data-color': piece.highlight.color, 'data-note': piece.highlight.note }, node);
    }
    return node;
  }));
}
