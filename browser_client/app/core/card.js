// A page card put back together on the phone: the port of peer_agent/cards.py CardAssembler.
//
// Pure (no I/O; `now` in milliseconds passed in). A `page.push` names the thumbnails; each then
// arrives as exactly one binary frame whose transfer id is the thumbnail's id, at offset 0,
// checked for size and sha-256 against the push (PageThumb describes the encoded bytes, so the
// check is on exactly what arrived). A bad thumbnail is dropped, not fatal: the card goes on.
// A card with `text` (PageText, the reader view of a synced tab, docs/SYNC.md) waits for one
// more frame, the gzip'd reader blocks, checked the same way; reader.js decodes it.

import { sha256 } from '../vendor/noble.js';
import { bytesToHex } from './bytes.js';

export const CARD_TIMEOUT_MS = 30_000;
export const MAX_PENDING_CARDS = 4;
const FINISHED_KEPT = 64;

/**
 * @typedef {{id: string, kind: string, mime: string, width: number, height: number,
 *   natural_width: number, natural_height: number, size: number, sha256: string,
 *   source: string | null}} PageThumb
 * @typedef {{id: string, size: number, sha256: string, encoding: 'gzip'}} PageText
 * @typedef {{t: 'page.push', id: string, url: string, title: string, thumbs: PageThumb[], pull: string | null,
 *   text?: PageText | null, doc?: string | null}} PagePush
 * @typedef {{type: 'ready', push: PagePush, images: {thumb: PageThumb, bytes: Uint8Array}[], dropped: Record<string, string>,
 *   text: Uint8Array | null}} CardReady `text`: the checked gzip bytes of push.text, null if none or dropped
 * @typedef {{type: 'failed', cardId: string, code: string, message: string, push: PagePush | null,
 *   images: {thumb: PageThumb, bytes: Uint8Array}[], text: Uint8Array | null}} CardFailed
 * @typedef {{type: 'refused', transferId: string, code: string, message: string}} ThumbRefused
 * @typedef {CardReady | CardFailed | ThumbRefused} CardEvent
 */

export class CardAssembler {
  /** @type {Map<string, {push: PagePush, started: number, arrived: Map<string, Uint8Array>, dropped: Map<string, string>}>} */
  #pending = new Map();
  /** @type {Map<string, string>} thumbnail (or text) id -> card id */
  #owner = new Map();
  /** @type {string[]} finished card ids, so that a replayed push is not shown twice */
  #finished = [];

  constructor({ timeoutMs = CARD_TIMEOUT_MS, maxPending = MAX_PENDING_CARDS } = {}) {
    this.timeoutMs = timeoutMs;
    this.maxPending = maxPending;
  }

  /** Whether a binary frame with this id is a thumbnail (asked before the file transfers). */
  owns(/** @type {string} */ transferId) {
    return this.#owner.has(transferId);
  }

  /** @param {PagePush} push @param {number} now @returns {CardEvent[]} */
  receivePush(push, now) {
    const events = this.expire(now);
    if (this.#pending.has(push.id) || this.#finished.includes(push.id)) return events;
    const ids = frameIds(push);
    if (new Set(ids).size !== ids.length || ids.some((id) => this.#owner.has(id))) {
      this.#remember(push.id);
      return [...events, { type: 'failed', cardId: push.id, code: 'bad_message',
        message: 'Your PC sent a page card whose thumbnails share ids.', push, images: [], text: null }];
    }
    if (this.#pending.size >= this.maxPending) {
      return [...events, { type: 'failed', cardId: push.id, code: 'rate_limited',
        message: 'Too many page cards arrived at once; this one was left out.', push, images: [], text: null }];
    }
    const pending = { push, started: now, arrived: new Map(), dropped: new Map() };
    this.#pending.set(push.id, pending);
    for (const id of ids) this.#owner.set(id, push.id);
    return [...events, ...this.#finishIfComplete(pending)];
  }

  /** @param {import('./frames.js').DataFrame} frame @param {number} now @returns {CardEvent[]} */
  receiveFrame(frame, now) {
    const events = this.expire(now);
    const cardId = this.#owner.get(frame.transferId);
    const pending = cardId === undefined ? undefined : this.#pending.get(cardId);
    if (pending === undefined) {
      return [...events, { type: 'refused', transferId: frame.transferId, code: 'unknown_transfer',
        message: 'A data frame for no pending page card.' }];
    }
    // The text frame is checked exactly like a thumbnail: same size and sha-256 fields.
    const text = pending.push.text ?? null;
    const thumb = /** @type {PageThumb | PageText} */ (text !== null && text.id === frame.transferId
      ? text : pending.push.thumbs.find((t) => t.id === frame.transferId));
    if (pending.arrived.has(thumb.id) || pending.dropped.has(thumb.id)) {
      return [...events, { type: 'refused', transferId: thumb.id, code: 'bad_frame', message: 'A thumbnail arrived twice.' }];
    }
    /** @type {ThumbRefused | null} */
    let refused = null;
    if (frame.offset !== 0) {
      refused = { type: 'refused', transferId: thumb.id, code: 'bad_frame', message: 'A thumbnail did not arrive as one frame.' };
    } else if (frame.payload.length !== thumb.size) {
      refused = { type: 'refused', transferId: thumb.id, code: 'bad_frame',
        message: `A thumbnail arrived with ${frame.payload.length} bytes instead of ${thumb.size}.` };
    } else if (bytesToHex(sha256(frame.payload)) !== thumb.sha256) {
      refused = { type: 'refused', transferId: thumb.id, code: 'hash_mismatch',
        message: 'A thumbnail arrived damaged: its sha-256 does not match the card.' };
    }
    if (refused === null) {
      pending.arrived.set(thumb.id, frame.payload);
      return [...events, ...this.#finishIfComplete(pending)];
    }
    pending.dropped.set(thumb.id, refused.message);
    return [...events, refused, ...this.#finishIfComplete(pending)];
  }

  /** Fail the cards still incomplete `timeoutMs` after their push. @param {number} now @returns {CardEvent[]} */
  expire(now) {
    /** @type {CardEvent[]} */
    const events = [];
    for (const pending of [...this.#pending.values()]) {
      if (now - pending.started < this.timeoutMs) continue;
      events.push(this.#fail(pending, 'stalled', `The page card was incomplete after ${Math.round(this.timeoutMs / 1000)} s: `
        + `${pending.arrived.size} of ${frameIds(pending.push).length} thumbnails arrived.`));
    }
    return events;
  }

  /** The channel went away: every pending card fails with what it has. @returns {CardEvent[]} */
  interruptAll() {
    return [...this.#pending.values()].map((p) => this.#fail(p, 'peer_gone', 'Your PC went away while sending a page card.'));
  }

  /** @param {{push: PagePush, arrived: Map<string, Uint8Array>, dropped: Map<string, string>}} pending */
  #images(pending) {
    return pending.push.thumbs.filter((t) => pending.arrived.has(t.id))
      .map((thumb) => ({ thumb, bytes: /** @type {Uint8Array} */ (pending.arrived.get(thumb.id)) }));
  }

  /** @param {{push: PagePush, arrived: Map<string, Uint8Array>}} pending @returns {Uint8Array | null} */
  #text(pending) {
    const text = pending.push.text ?? null;
    return text === null ? null : pending.arrived.get(text.id) ?? null;
  }

  /** @param {{push: PagePush, started: number, arrived: Map<string, Uint8Array>, dropped: Map<string, string>}} pending @returns {CardEvent[]} */
  #finishIfComplete(pending) {
    if (pending.arrived.size + pending.dropped.size !== frameIds(pending.push).length) return [];
    this.#forget(pending.push);
    return [{ type: 'ready', push: pending.push, images: this.#images(pending), dropped: Object.fromEntries(pending.dropped),
      text: this.#text(pending) }];
  }

  /** @param {{push: PagePush, started: number, arrived: Map<string, Uint8Array>, dropped: Map<string, string>}} pending @param {string} code @param {string} message @returns {CardFailed} */
  #fail(pending, code, message) {
    this.#forget(pending.push);
    return { type: 'failed', cardId: pending.push.id, code, message, push: pending.push, images: this.#images(pending),
      text: this.#text(pending) };
  }

  /** @param {PagePush} push */
  #forget(push) {
    this.#pending.delete(push.id);
    for (const id of frameIds(push)) this.#owner.delete(id);
    this.#remember(push.id);
  }

  /** @param {string} id */
  #remember(id) {
    this.#finished.push(id);
    if (this.#finished.length > FINISHED_KEPT) this.#finished.shift();
  }
}

/** Every frame id a card waits for: its thumbnails, then its text (if any). @param {PagePush} push */
function frameIds(push) {
  return [...push.thumbs.map((t) => t.id), ...(push.text ? [push.text.id] : [])];
}
