// core/shake.js: a shake (SWINGS strong swings that change direction within WINDOW_MS) pulls
// once; walking, a phone set down, slow tilts and one hard bump do not; after a shake the
// detector is quiet for COOLDOWN_MS, then the next shake counts again.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { COOLDOWN_MS, SWINGS, THRESHOLD, WINDOW_MS, ShakeDetector } from '../app/core/shake.js';

const HZ = 60; // DeviceMotion's usual rate on phones (Chromium: 60 Hz)
const STEP = 1000 / HZ;

/**
 * Feeds `readings` ([x, y, z] m/s², gravity removed) one per STEP ms from `start`.
 * @returns {number[]} the times at which the detector said "shaken"
 */
function feedAll(detector, readings, start = 0) {
  const shakes = [];
  readings.forEach(([x, y, z], i) => {
    const now = start + i * STEP;
    if (detector.feed(x, y, z, now)) shakes.push(now);
  });
  return shakes;
}

/** A back-and-forth shake along x: `swings` half-waves of `peak` m/s², each `halfMs` long. */
function shake({ swings = 4, peak = 25, halfMs = 120 } = {}) {
  const out = [];
  const perHalf = Math.round(halfMs / STEP);
  for (let s = 0; s < swings; s += 1) {
    for (let i = 0; i < perHalf; i += 1) {
      const value = peak * Math.sin(Math.PI * (i + 0.5) / perHalf) * (s % 2 === 0 ? 1 : -1);
      out.push([value, 0.4, -0.3]);
    }
  }
  return out;
}

const still = (ms) => Array.from({ length: Math.round(ms / STEP) }, () => [0.05, -0.02, 0.03]);

test('a shake triggers exactly once, on its third swing', () => {
  const detector = new ShakeDetector();
  const readings = shake({ swings: 6 });
  const shakes = feedAll(detector, readings);
  assert.equal(shakes.length, 1);
  // The third swing (index 2) starts at 2 * 120 ms: the shake is recognised within it.
  const perHalf = Math.round(120 / STEP);
  assert.ok(shakes[0] >= 2 * perHalf * STEP && shakes[0] < 3 * perHalf * STEP, shakes);
  // Swings after it fall in the cooldown: not counted as peaks either.
  assert.equal(detector.peaks, SWINGS);
});

test('walking, a phone set down and a slow tilt are not shakes', () => {
  const detector = new ShakeDetector();
  // Walking: ~2 Hz steps of ~3 m/s², mostly vertical, for 10 s.
  const walking = Array.from({ length: 10 * HZ }, (_, i) => {
    const t = i / HZ;
    return [0.8 * Math.sin(2 * Math.PI * t), 0.5, 3 * Math.sin(4 * Math.PI * t)];
  });
  assert.deepEqual(feedAll(detector, walking), []);
  // Set down on a table: one short bump of 9 m/s², then still.
  assert.deepEqual(feedAll(detector, [[0, 0, -9], [0, 0, 4], ...still(500)], 10_000), []);
  // A slow tilt over 2 s: the gravity-free acceleration stays near zero (under 1 m/s²).
  const tilt = Array.from({ length: 2 * HZ }, (_, i) => [0.6 * Math.sin(Math.PI * i / (2 * HZ)), 0, 0.2]);
  assert.deepEqual(feedAll(detector, tilt, 11_000), []);
  assert.equal(detector.peaks, 0);
});

test('strong motion in one direction is one swing, not a shake', () => {
  // A hard push (a car braking, a phone thrown on a sofa): strong, but never changes direction.
  const detector = new ShakeDetector();
  const push = Array.from({ length: HZ }, () => [THRESHOLD + 10, 1, 0]);
  assert.deepEqual(feedAll(detector, push), []);
  assert.equal(detector.peaks, 1);
});

test('swings too far apart are not a shake', () => {
  // Three alternating strong jolts, each more than WINDOW_MS after the one before.
  const detector = new ShakeDetector();
  const gap = WINDOW_MS + 100;
  assert.equal(detector.feed(20, 0, 0, 0), false);
  assert.equal(detector.feed(-20, 0, 0, gap), false);
  assert.equal(detector.feed(20, 0, 0, 2 * gap), false);
  assert.equal(detector.feed(-20, 0, 0, 3 * gap), false);
  // The same three inside the window are one.
  assert.equal(detector.feed(20, 0, 0, 4 * gap), false);
  assert.equal(detector.feed(-20, 0, 0, 4 * gap + 200), false);
  assert.equal(detector.feed(20, 0, 0, 4 * gap + 400), true);
});

test('debounce: a second shake inside the cooldown is ignored, after it counts', () => {
  const detector = new ShakeDetector();
  const first = feedAll(detector, shake());
  assert.equal(first.length, 1);
  // Keep shaking right away: still the same pull.
  assert.deepEqual(feedAll(detector, shake(), first[0] + STEP), []);
  assert.deepEqual(feedAll(detector, shake(), first[0] + COOLDOWN_MS - 600), []);
  // Once the cooldown is over, a new shake pulls again, once.
  const second = feedAll(detector, shake(), first[0] + COOLDOWN_MS + STEP);
  assert.equal(second.length, 1);
  assert.ok(second[0] >= first[0] + COOLDOWN_MS);
});

test('a reading exactly at the threshold counts as a swing, just under does not', () => {
  const detector = new ShakeDetector();
  assert.equal(detector.feed(THRESHOLD - 0.01, 0, 0, 0), false);
  assert.equal(detector.peaks, 0);
  detector.feed(THRESHOLD, 0, 0, 10);
  assert.equal(detector.peaks, 1);
});
