// Waiting, bounded: every wait in the app has a deadline, like every wait on the Python side
// (peer_agent/session.py Dialogue.race), and ends early when the session dies.

import { PeerbeamError } from '../core/errors.js';

/**
 * Resolve with `promise`, unless `ms` pass first (then reject with connect_timeout and
 * `sentence`) or `abort` settles first (then reject with what it gives).
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} sentence for people: what did not happen in time
 * @param {Promise<never>} [abort] rejects when the surrounding session dies
 * @returns {Promise<T>}
 */
export function within(promise, ms, sentence, abort) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new PeerbeamError('connect_timeout', sentence)), ms);
  });
  const racers = [promise, timeout];
  if (abort) racers.push(abort);
  return /** @type {Promise<T>} */ (Promise.race(racers)).finally(() => clearTimeout(timer));
}

/** @param {number} ms */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A first-in first-out queue whose `get` waits; `close` wakes every waiter with `null`.
 * @template T
 */
export class Queue {
  /** @type {T[]} */ #items = [];
  /** @type {Array<(item: T | null) => void>} */ #waiters = [];
  #closed = false;

  /** @param {T} item */
  put(item) {
    if (this.#closed) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  /** @returns {Promise<T | null>} the next item, or null once closed and drained */
  get() {
    if (this.#items.length) return Promise.resolve(/** @type {T} */ (this.#items.shift()));
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close() {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }
}
