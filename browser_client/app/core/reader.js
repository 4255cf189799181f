// The reader view's text (docs/SYNC.md "Reader view"): the gzip'd JSON a page card carries as
// its `text` frame (card.js hands over the checked bytes), unpacked and checked here.
//
// Pure apart from DecompressionStream (a web platform stream, in node too). The unpacked JSON is
// capped at 1 MiB while it streams, so a small gzip bomb costs at most that much memory.
//
//   await decodeReaderText(bytes) -> {v: 1, url, title, truncated, blocks: [{k, t, src?}], dropped}
//        blocks keep their positions (a block's index is the anchor scroll and highlights use):
//        a block that does not fit becomes {k: 'p', t: ''} and counts in `dropped`; past 2000
//        blocks, or a `t` past 8000 characters, the rest is cut and `truncated` is true.
//        Throws SyncError('bad_message') for bytes that are not gzip'd reader JSON of v 1, or
//        that unpack to more than 1 MiB.

import { codePointLength, isWellFormed, utf8Decode } from './bytes.js';
import { MAX_BLOCKS, MAX_BLOCK_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, SyncError } from './sync_doc.js';

/** JSON ≤ 1 MiB before gzip, gzip ≤ one frame's payload (docs/SYNC.md, schema PageText.size). */
export const MAX_READER_JSON = 1024 * 1024;
export const MAX_READER_GZIP = 64 * 1024 - 18;
export const BLOCK_KINDS = Object.freeze(['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'li', 'quote', 'pre', 'img']);

/**
 * @typedef {{k: string, t: string, src?: string}} ReaderBlock
 * @typedef {{v: 1, url: string, title: string, truncated: boolean, blocks: ReaderBlock[], dropped: number}} ReaderText
 */

/** @param {string} why */
const refused = (why) => new SyncError('bad_message', `The page text could not be read: ${why}.`);

/** @param {unknown} v @param {number} max */
const isText = (v, max) => typeof v === 'string' && (v.length <= max || codePointLength(v) <= max) && isWellFormed(v);

/**
 * @param {Uint8Array} bytes the gzip bytes of a card's `text` frame
 * @returns {Promise<ReaderText>}
 */
export async function decodeReaderText(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw refused('no bytes');
  if (bytes.length > MAX_READER_GZIP) throw refused('it is larger than one frame');
  const json = await gunzip(bytes, MAX_READER_JSON);
  let parsed;
  try {
    parsed = JSON.parse(utf8Decode(json));
  } catch {
    throw refused('it is not UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw refused('it is not an object');
  if (parsed.v !== 1) throw refused('it is not version 1');
  if (!isText(parsed.url, MAX_URL_CHARS) || !isText(parsed.title, MAX_TITLE_CHARS)) throw refused('its url or title is not valid');
  if (typeof parsed.truncated !== 'boolean' || !Array.isArray(parsed.blocks)) throw refused('its blocks are missing');
  let truncated = parsed.truncated || parsed.blocks.length > MAX_BLOCKS;
  let dropped = 0;
  /** @type {ReaderBlock[]} */
  const blocks = [];
  for (const raw of parsed.blocks.slice(0, MAX_BLOCKS)) {
    const block = readBlock(raw);
    if (block === null) {
      dropped += 1;
      blocks.push({ k: 'p', t: '' });
      continue;
    }
    if (codePointLength(block.t) > MAX_BLOCK_CHARS) {
      block.t = [...block.t].slice(0, MAX_BLOCK_CHARS).join('');
      truncated = true;
    }
    blocks.push(block);
  }
  return { v: 1, url: parsed.url, title: parsed.title, truncated, blocks, dropped };
}

/** @param {unknown} raw @returns {ReaderBlock | null} */
function readBlock(raw) {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const { k, t, src } = /** @type {Record<string, unknown>} */ (raw);
  // `t` is capped by the caller (cut, not dropped): a long paragraph still shows its start.
  if (typeof k !== 'string' || !BLOCK_KINDS.includes(k) || typeof t !== 'string' || !isWellFormed(t)) return null;
  if (k !== 'img') return { k, t };
  // An image block shows the card's thumbnail whose `source` is `src`: without one it is nothing.
  return isText(src, MAX_URL_CHARS) && src !== '' ? { k, t, src: /** @type {string} */ (src) } : null;
}

/**
 * Unpack gzip, refusing (and stopping the inflater) as soon as the output passes `cap`.
 * @param {Uint8Array} bytes @param {number} cap @returns {Promise<Uint8Array>}
 */
async function gunzip(bytes, cap) {
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip')).getReader();
  /** @type {Uint8Array[]} */
  const parts = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > cap) {
        await reader.cancel().catch(() => {});
        throw refused('it unpacks to more than 1 MiB');
      }
      parts.push(value);
    }
  } catch (err) {
    if (err instanceof SyncError) throw err;
    throw refused('it is not gzip');
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
