// Page cards on the phone: the shell around core/card.js, and pulls ("the page my PC shows
// now"), the phone's half of peer_agent/beaming.py. A card's thumbnails become Blobs the page
// shows through blob: URLs (the CSP allows img-src blob:).

import { b64urlEncode } from '../core/bytes.js';
import { CardAssembler } from '../core/card.js';

// As long as the agent may take (peer_agent/beaming.py PULL_TIMEOUT): it fetches the page.
const PULL_TIMEOUT_MS = 45_000;
const EXPIRE_EVERY_MS = 5_000;

/**
 * @typedef {object} Card a card ready to show
 * @property {import('../core/card.js').PagePush} push
 * @property {{thumb: import('../core/card.js').PageThumb, blob: Blob}[]} images
 * @property {number} dropped thumbnails that arrived damaged or never came
 * @typedef {{card: Card} | {refused: {code: string, message: string}}} PullAnswer
 */

export class Pages {
  #cards = new CardAssembler();
  /** @type {Map<string, (answer: PullAnswer) => void>} */ #pulls = new Map();
  #timer;

  /**
   * @param {import('./rtc_link.js').RtcLink} link
   * @param {(card: Card) => void} onCard
   */
  constructor(link, onCard) {
    this.link = link;
    this.onCard = onCard;
    this.#timer = setInterval(() => this.#handle(this.#cards.expire(performance.now())), EXPIRE_EVERY_MS);
  }

  /** @param {string} id a frame's transfer id */
  owns(id) {
    return this.#cards.owns(id);
  }

  /** @param {import('../core/channel.js').ChannelMessage} message */
  onMessage(message) {
    if (message.t === 'page.push') {
      this.#handle(this.#cards.receivePush(/** @type {any} */ (message), performance.now()));
    } else if (message.t === 'page.refused') {
      this.#pulls.get(/** @type {string} */ (message.pull))?.({
        refused: { code: /** @type {string} */ (message.code), message: /** @type {string} */ (message.message) } });
    }
    // page.pull: a phone shows no page to a PC.
  }

  /** @param {import('../core/frames.js').DataFrame} frame */
  onFrame(frame) {
    this.#handle(this.#cards.receiveFrame(frame, performance.now()));
  }

  /** @param {import('../core/card.js').CardEvent[]} events */
  #handle(events) {
    for (const event of events) {
      if (event.type === 'refused') {
        console.info(`[pages] thumbnail refused: ${event.code}: ${event.message}`);
        continue;
      }
      if (event.push === null) {
        console.info(`[pages] card refused: ${event.code}: ${event.message}`);
        continue;
      }
      // A card that failed part-way is still shown with what arrived: nothing delivered is lost.
      const card = {
        push: event.push,
        images: event.images.map(({ thumb, bytes }) => ({ thumb, blob: new Blob([bytes], { type: thumb.mime }) })),
        dropped: event.push.thumbs.length - event.images.length,
      };
      this.onCard(card);
      if (event.push.pull) this.#pulls.get(event.push.pull)?.({ card });
    }
  }

  /**
   * Ask the PC for the page it shows now. Resolves with the card or the PC's refusal
   * (no_page, inactive...), or a refusal of our own when it does not answer in time.
   * @returns {Promise<PullAnswer>}
   */
  pull() {
    const id = b64urlEncode(crypto.getRandomValues(new Uint8Array(9)));
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish({ refused: { code: 'connect_timeout',
        message: `Your PC did not answer within ${PULL_TIMEOUT_MS / 1000} s.` } }), PULL_TIMEOUT_MS);
      const finish = (/** @type {PullAnswer} */ answer) => {
        clearTimeout(timer);
        this.#pulls.delete(id);
        resolve(answer);
      };
      this.#pulls.set(id, finish);
      try {
        this.link.send({ t: 'page.pull', id });
      } catch (err) {
        finish({ refused: { code: 'peer_gone', message: /** @type {Error} */ (err).message } });
      }
    });
  }

  close() {
    clearInterval(this.#timer);
    this.#handle(this.#cards.interruptAll());
    for (const finish of [...this.#pulls.values()]) finish({ refused: { code: 'peer_gone', message: 'The connection closed.' } });
  }
}
