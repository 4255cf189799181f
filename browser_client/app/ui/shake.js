// Shake to pull (DESIGN "Triggers on the phone"). DeviceMotion fires only in secure contexts;
// iOS also asks the user, and only from a tap (DeviceMotionEvent.requestPermission). Where it
// is unavailable the pull button is all there is.

import { ShakeDetector } from '../core/shake.js';

const G = 9.80665;

/** 'ready' (listen now), 'ask' (needs a tap: iOS), or 'none'. */
export function shakeSupport() {
  if (!window.isSecureContext || typeof DeviceMotionEvent === 'undefined') return 'none';
  return typeof (/** @type {any} */ (DeviceMotionEvent)).requestPermission === 'function' ? 'ask' : 'ready';
}

/** Ask iOS for motion access; call from a tap. @returns {Promise<boolean>} */
export async function askForMotion() {
  try {
    return (await (/** @type {any} */ (DeviceMotionEvent)).requestPermission()) === 'granted';
  } catch {
    return false;
  }
}

/**
 * Listen for shakes until the returned function is called.
 * @param {() => void} onShake
 * @returns {() => void}
 */
export function listenForShakes(onShake) {
  const detector = new ShakeDetector();
  /** @param {DeviceMotionEvent} event */
  const onMotion = (event) => {
    let x; let y; let z;
    const a = event.acceleration;
    if (a && a.x !== null && a.y !== null && a.z !== null) {
      ({ x, y, z } = /** @type {{x: number, y: number, z: number}} */ (a));
    } else {
      const g = event.accelerationIncludingGravity;
      if (!g || g.x === null || g.y === null || g.z === null) return;
      // Without the gravity-free reading, take g off the magnitude's vertical share roughly.
      x = /** @type {number} */ (g.x); y = /** @type {number} */ (g.y); z = /** @type {number} */ (g.z) - G;
    }
    const shaken = detector.feed(x, y, z, event.timeStamp);
    document.body.dataset.shakePeaks = String(detector.peaks);
    if (shaken) onShake();
  };
  window.addEventListener('devicemotion', onMotion);
  document.body.dataset.shake = 'on';
  return () => {
    window.removeEventListener('devicemotion', onMotion);
    delete document.body.dataset.shake;
  };
}
