// Shake detection, pure: readings of acceleration without gravity (m/s², DeviceMotion's
// `acceleration`, or `accelerationIncludingGravity` minus g) and their time in, "shaken" out.
// A shake is SWINGS strong swings that change direction within WINDOW_MS; after one, the
// detector stays quiet for COOLDOWN_MS so one shake is one pull.

export const THRESHOLD = 13; // m/s²: well above walking (~3) and a phone set down on a table
export const SWINGS = 3;
export const WINDOW_MS = 1200;
export const COOLDOWN_MS = 2500;

export class ShakeDetector {
  /** @type {{at: number, sign: number}[]} */ #swings = [];
  #quietUntil = -Infinity;

  /** Strong swings seen so far (a test reads it to drive the sensor without sleeping). */
  peaks = 0;

  /**
   * @param {number} x @param {number} y @param {number} z m/s², gravity removed
   * @param {number} now milliseconds
   * @returns {boolean} whether this reading completes a shake
   */
  feed(x, y, z, now) {
    const magnitude = Math.hypot(x, y, z);
    if (magnitude < THRESHOLD || now < this.#quietUntil) return false;
    // The direction of a swing: the sign of its largest axis.
    const axis = [x, y, z].reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
    const sign = Math.sign(axis);
    this.#swings = this.#swings.filter((s) => now - s.at <= WINDOW_MS);
    const last = this.#swings.at(-1);
    if (last !== undefined && last.sign === sign) return false; // the same swing, still going
    this.#swings.push({ at: now, sign });
    this.peaks += 1;
    if (this.#swings.length < SWINGS) return false;
    this.#swings = [];
    this.#quietUntil = now + COOLDOWN_MS;
    return true;
  }
}
