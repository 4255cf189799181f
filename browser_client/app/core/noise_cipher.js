// CipherState and SymmetricState of the Noise Protocol Framework, revision 34 (§5.1, §5.2),
// with the functions of the suite peerbeam uses: AESGCM (§12.4) and SHA256 (§12.5). The
// handshake on top of them is noise.js; split off only to keep each file readable.

import { gcm, hmac, sha256 } from '../vendor/noble.js';
import { concatBytes, u64be } from './bytes.js';
import { PeerbeamError } from './errors.js';

const HASHLEN = 32;
export const TAGLEN = 16;
/** The sentence of every Noise failure (crypto/errors.py NoiseError). */
export const NOISE_FAILED = 'The secure handshake failed: the connection may have been intercepted.';
const MAX_NONCE = (1n << 64n) - 1n; // §5.1: reserved, never used to encrypt
const EMPTY = new Uint8Array(0);

const hash = (/** @type {Uint8Array} */ data) => sha256(data);
const mac = (/** @type {Uint8Array} */ key, /** @type {Uint8Array} */ data) => hmac(sha256, key, data);

/**
 * §4.3 HKDF: the chaining key as salt, one-byte counters as info (RFC 5869 written out).
 * @param {Uint8Array} chainingKey
 * @param {Uint8Array} ikm
 * @param {2 | 3} count
 */
function noiseHkdf(chainingKey, ikm, count) {
  const tempKey = mac(chainingKey, ikm);
  const outputs = [mac(tempKey, new Uint8Array([1]))];
  for (let i = 2; i <= count; i++) {
    outputs.push(mac(tempKey, concatBytes(outputs[i - 2], new Uint8Array([i]))));
  }
  return outputs;
}

/** §5.1: a key and a counter nonce; AESGCM with the nonce laid out as §12.4 says. */
export class CipherState {
  /** @type {Uint8Array | null} */ #key;
  #n = 0n;

  /** @param {Uint8Array | null} [key] */
  constructor(key = null) {
    this.#key = key;
  }

  #nonce() {
    // §12.4: 32 bits of zeros followed by the big-endian encoding of n.
    if (this.#n >= MAX_NONCE) {
      throw new PeerbeamError('interception', 'The secure channel has used up its nonces; reconnect.');
    }
    return concatBytes(new Uint8Array(4), u64be(this.#n));
  }

  /** @param {Uint8Array} ad @param {Uint8Array} plaintext */
  encryptWithAd(ad, plaintext) {
    if (this.#key === null) return plaintext;
    const ciphertext = gcm(this.#key, this.#nonce(), ad).encrypt(plaintext);
    this.#n += 1n;
    return ciphertext;
  }

  /** @param {Uint8Array} ad @param {Uint8Array} ciphertext */
  decryptWithAd(ad, ciphertext) {
    if (this.#key === null) return ciphertext;
    if (ciphertext.length < TAGLEN) throw new PeerbeamError('interception', NOISE_FAILED);
    const nonce = this.#nonce();
    let plaintext;
    try {
      plaintext = gcm(this.#key, nonce, ad).decrypt(ciphertext);
    } catch {
      throw new PeerbeamError('interception', NOISE_FAILED); // §5.1: n is not incremented
    }
    this.#n += 1n;
    return plaintext;
  }
}

/** §5.2: chaining key ck, handshake hash h and the current cipher. */
export class SymmetricState {
  /** @param {Uint8Array} name */
  constructor(name) {
    // §5.2 InitializeSymmetric: names of at most HASHLEN bytes are zero-padded, longer hashed.
    this.h = name.length <= HASHLEN ? concatBytes(name, new Uint8Array(HASHLEN - name.length)) : hash(name);
    this.ck = this.h;
    this.cipher = new CipherState();
  }

  /** @param {Uint8Array} ikm */
  mixKey(ikm) {
    const [ck, tempK] = noiseHkdf(this.ck, ikm, 2);
    this.ck = ck;
    this.cipher = new CipherState(tempK);
  }

  /** @param {Uint8Array} data */
  mixHash(data) {
    this.h = hash(concatBytes(this.h, data));
  }

  /** @param {Uint8Array} ikm */
  mixKeyAndHash(ikm) {
    const [ck, tempH, tempK] = noiseHkdf(this.ck, ikm, 3);
    this.ck = ck;
    this.mixHash(tempH);
    this.cipher = new CipherState(tempK);
  }

  /** @param {Uint8Array} plaintext */
  encryptAndHash(plaintext) {
    const ciphertext = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** @param {Uint8Array} ciphertext */
  decryptAndHash(ciphertext) {
    const plaintext = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  split() {
    const [k1, k2] = noiseHkdf(this.ck, EMPTY, 2);
    return [new CipherState(k1), new CipherState(k2)];
  }
}
