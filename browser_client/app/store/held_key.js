// This browser's identity as a non-extractable WebCrypto X25519 key (DESIGN "Pairing" step 6:
// "keys non-extractable where possible"): script can use it, nobody can read it out — not an
// injected script, not a devtools console, not a copy of the profile's IndexedDB turned into
// key bytes by another program without the browser.
//
// WebCrypto is asynchronous and exists only in secure contexts (HTTPS, localhost); the Noise
// core is synchronous and runs everywhere. So this is a noise.js StaticKey whose DH results
// are computed ahead: `prepare(publicKeys)` before each handshake step, `dh()` then answers
// from what was prepared. Over plain HTTP on a LAN (no crypto.subtle) the identity is raw
// bytes instead (pairings.js).

import { bytesToHex } from '../core/bytes.js';
import { PeerbeamError } from '../core/errors.js';

const X25519 = { name: 'X25519' };

/** Whether this context can hold an X25519 key in WebCrypto (secure context, engine support). */
export async function canHoldKeys() {
  const subtle = globalThis.crypto?.subtle;
  if (!globalThis.isSecureContext || subtle === undefined) return false;
  try {
    await subtle.generateKey(X25519, false, ['deriveBits']);
    return true;
  } catch {
    return false; // an engine without X25519 in WebCrypto
  }
}

/** @implements {import('../core/noise.js').StaticKey} */
export class HeldKey {
  /** @type {Map<string, Uint8Array | null>} public key hex -> shared secret (null: refused) */
  #prepared = new Map();

  /**
   * @param {CryptoKey} privateKey non-extractable, usage deriveBits
   * @param {Uint8Array} publicKey raw, 32 bytes
   */
  constructor(privateKey, publicKey) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** A fresh non-extractable key pair. */
  static async generate() {
    const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey(X25519, false, ['deriveBits']));
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    return new HeldKey(pair.privateKey, publicKey);
  }

  /**
   * Compute DH(this key, each public key) now, for dh() to answer later. A public key WebCrypto
   * refuses (a low-order point: the all-zero result, RFC 7748 §6.1) is remembered as refused.
   * @param {Uint8Array[]} publicKeys
   */
  async prepare(publicKeys) {
    for (const raw of publicKeys) {
      const id = bytesToHex(raw);
      if (this.#prepared.has(id) || raw.length !== 32) continue;
      try {
        const peer = await crypto.subtle.importKey('raw', raw, X25519, true, []);
        const bits = await crypto.subtle.deriveBits({ name: 'X25519', public: peer }, this.privateKey, 256);
        this.#prepared.set(id, new Uint8Array(bits));
      } catch {
        this.#prepared.set(id, null);
      }
    }
  }

  /** @param {Uint8Array} publicKey @returns {Uint8Array} */
  dh(publicKey) {
    const secret = this.#prepared.get(bytesToHex(publicKey));
    if (secret === undefined) throw new Error('HeldKey.dh: prepare() was not called for this public key');
    if (secret === null) throw new PeerbeamError('interception');
    // Used once per handshake: forget it, so no DH result outlives its handshake here.
    this.#prepared.delete(bytesToHex(publicKey));
    return secret;
  }
}
