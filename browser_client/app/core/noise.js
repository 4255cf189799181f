// The Noise Protocol Framework, revision 34, reduced to what peerbeam speaks: the port of
// crypto/noise.py, with the same objects and the same failure rules.
//
// * Noise_NKpsk0_25519_AESGCM_SHA256: first contact. The phone knows the agent's static key
//   from the QR code and both know the QR secret, mixed in as the psk.
// * Noise_KKpsk0_25519_AESGCM_SHA256: reconnect. Both static keys are known from the pairing
//   record; the psk comes from the pair secret.
//
// The classes follow the spec's structure (§5): CipherState, SymmetricState, HandshakeState;
// patterns are data (§7), psk handling is §9. No I/O: messages in, messages out. Any failure
// while reading is fatal, because a half-processed message has already changed the hash (§5.3).

import { x25519 } from '../vendor/noble.js';
import { concatBytes, utf8Encode } from './bytes.js';
import { PeerbeamError } from './errors.js';
import { NOISE_FAILED, SymmetricState, TAGLEN } from './noise_cipher.js';

/** @typedef {'NKpsk0' | 'KKpsk0'} Pattern */
/** @typedef {'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk'} Token */

export const MAX_MESSAGE_LEN = 65535; // §3: every Noise message, handshake or transport
export const DHLEN = 32;
export const PSK_LEN = 32;
const EMPTY = new Uint8Array(0);

// §7.4 (NK, KK) with the psk0 modifier of §9.4: "psk" first in the first message. Pre-messages
// (§7.1) name the static keys each side knows in advance; both patterns carry static keys only
// there, so message tokens are "e", DH tokens and "psk".
/** @type {Readonly<Record<Pattern, {initiatorPre: Token[], responderPre: Token[], messages: Token[][]}>>} */
const PATTERNS = Object.freeze({
  NKpsk0: { initiatorPre: [], responderPre: ['s'], messages: [['psk', 'e', 'es'], ['e', 'ee']] },
  KKpsk0: {
    initiatorPre: ['s'],
    responderPre: ['s'],
    messages: [['psk', 'e', 'es', 'ss'], ['e', 'ee', 'se']],
  },
});

/** @param {Pattern} pattern */
function protocolName(pattern) {
  return utf8Encode(`Noise_${pattern}_25519_AESGCM_SHA256`);
}

/** @param {Uint8Array} privateKey @param {Uint8Array} publicKey */
function dh(privateKey, publicKey) {
  try {
    return x25519.getSharedSecret(privateKey, publicKey);
  } catch {
    // noble refuses low-order points (§12.1), whose shared secret would be all zeros: a peer
    // that sends one is attacking the handshake. The Python side refuses the same points.
    throw new PeerbeamError('interception', NOISE_FAILED);
  }
}

/**
 * A static private key this code cannot read: a non-extractable WebCrypto key in the browser
 * (store/held_key.js). `dh` must answer synchronously, so its holder computes the DH results
 * for the public keys a handshake will meet before each step (the peer's static key before
 * the first message, the peer's ephemeral before reading its message).
 * @typedef {{publicKey: Uint8Array, dh: (publicKey: Uint8Array) => Uint8Array}} StaticKey
 */

/** @param {unknown} key @returns {key is StaticKey} */
export function isStaticKey(key) {
  return typeof key === 'object' && key !== null && !(key instanceof Uint8Array) &&
    typeof (/** @type {StaticKey} */ (key)).dh === 'function';
}

/** The public half of a static key, raw or held. @param {Uint8Array | StaticKey} key */
export function staticPublic(key) {
  return isStaticKey(key) ? key.publicKey : x25519.getPublicKey(key);
}

/** @param {unknown} key @param {string} what */
function requireKey(key, what) {
  if (!(key instanceof Uint8Array) || key.length !== DHLEN) throw new RangeError(`${what} is 32 bytes`);
}

/** The two CipherStates after Split(), oriented for one side (§5.3). */
export class Transport {
  #send;
  #receive;
  #broken = false;

  /**
   * @param {import('./noise_cipher.js').CipherState} send
   * @param {import('./noise_cipher.js').CipherState} receive
   * @param {{handshakeHash: Uint8Array, chainingKey: Uint8Array, remoteStatic: Uint8Array | null}} info
   */
  constructor(send, receive, { handshakeHash, chainingKey, remoteStatic }) {
    this.#send = send;
    this.#receive = receive;
    this.handshakeHash = handshakeHash;
    // Kept after Split() on purpose: the pair secret and the DTLS binding key are derived from
    // it (kdf.js, binding.js), each under its own HKDF purpose label.
    this.chainingKey = chainingKey;
    this.remoteStatic = remoteStatic;
  }

  /** @param {Uint8Array} plaintext @param {Uint8Array} [ad] */
  encrypt(plaintext, ad = EMPTY) {
    if (plaintext.length + TAGLEN > MAX_MESSAGE_LEN) {
      throw new RangeError('a Noise transport message is at most 65535 bytes');
    }
    return this.#send.encryptWithAd(ad, plaintext);
  }

  /** @param {Uint8Array} ciphertext @param {Uint8Array} [ad] */
  decrypt(ciphertext, ad = EMPTY) {
    // The spec would let a caller retry after a failure (n is not consumed); on our ordered,
    // reliable channels a failure means tampering, so the transport stays broken.
    if (this.#broken || ciphertext.length > MAX_MESSAGE_LEN) {
      this.#broken = true;
      throw new PeerbeamError('interception', NOISE_FAILED);
    }
    try {
      return this.#receive.decryptWithAd(ad, ciphertext);
    } catch (err) {
      this.#broken = true;
      throw err;
    }
  }
}

/**
 * §5.3 for NKpsk0 and KKpsk0. Local misuse (writing out of turn, asking for the transport too
 * early) throws Error or RangeError; anything wrong with what the peer sent throws a
 * PeerbeamError with code "interception", after which the handshake is dead.
 */
export class HandshakeState {
  #spec;
  #initiator;
  #psk;
  /** @type {Uint8Array | StaticKey | null} */ #s;
  /** @type {Uint8Array | null} */ #e;
  /** @type {Uint8Array | null} */ #rs;
  /** @type {Uint8Array | null} */ #re = null;
  #index = 0;
  #failed = false;
  /** @type {Transport | null} */ #transport = null;
  #sym;

  /**
   * @param {Pattern} pattern
   * @param {object} options
   * @param {boolean} options.initiator
   * @param {Uint8Array} options.prologue bound into the hash (§6)
   * @param {Uint8Array} options.psk 32 bytes (§9.2)
   * @param {Uint8Array | StaticKey} [options.s] this side's static private key, where the
   *   pattern needs it: raw bytes, or a key held elsewhere
   * @param {Uint8Array} [options.rs] the peer's static public key, where known in advance
   * @param {Uint8Array} [options.e] a fixed ephemeral private key: test vectors only, since
   *   reusing an ephemeral gives up forward secrecy
   */
  constructor(pattern, { initiator, prologue, psk, s, rs, e }) {
    const spec = PATTERNS[pattern];
    if (spec === undefined) throw new RangeError(`unknown pattern ${pattern}`);
    const [localPre, remotePre] = initiator
      ? [spec.initiatorPre, spec.responderPre]
      : [spec.responderPre, spec.initiatorPre];
    // This side's static key is needed if it is pre-known to the peer or used in a DH token
    // ("es"/"se"/"ss" name the initiator's key first, the responder's second).
    const letter = initiator ? 0 : 1;
    const needsS =
      localPre.includes('s') ||
      spec.messages.some((m) => m.some((t) => t.length === 2 && t[letter] === 's'));
    if (!(psk instanceof Uint8Array) || psk.length !== PSK_LEN) {
      throw new RangeError('a Noise psk is 32 bytes (§9.2)');
    }
    if (needsS && s == null) throw new RangeError(`${pattern}: this side needs its static key s`);
    if (remotePre.includes('s')) requireKey(rs, `${pattern}: the peer's static key rs`);
    if (s != null) {
      if (isStaticKey(s)) requireKey(s.publicKey, 'a static public key');
      else requireKey(s, 'a static private key');
    }
    if (e != null) requireKey(e, 'an ephemeral private key');
    this.#spec = spec;
    this.#initiator = Boolean(initiator);
    this.#psk = psk.slice();
    this.#s = s ?? null;
    this.#e = e ?? null;
    this.#rs = rs != null ? rs.slice() : null;
    this.#sym = new SymmetricState(protocolName(pattern));
    this.#sym.mixHash(prologue);
    // §7.1: pre-message keys are hashed initiator's first, then the responder's.
    for (const [sideIsInitiator, pre] of [[true, spec.initiatorPre], [false, spec.responderPre]]) {
      for (const _ of pre) this.#sym.mixHash(this.#staticOf(sideIsInitiator)); // only "s" occurs
    }
  }

  /** @param {boolean} sideIsInitiator */
  #staticOf(sideIsInitiator) {
    if (sideIsInitiator === this.#initiator) return staticPublic(/** @type {Uint8Array | StaticKey} */ (this.#s));
    return /** @type {Uint8Array} */ (this.#rs);
  }

  get finished() {
    return this.#index >= this.#spec.messages.length;
  }

  get handshakeHash() {
    return this.#sym.h;
  }

  #myTurn() {
    return (this.#index % 2 === 0) === this.#initiator;
  }

  /** @param {Uint8Array} [payload] @returns {Uint8Array} */
  writeMessage(payload = EMPTY) {
    if (this.#failed || this.finished || !this.#myTurn()) {
      throw new Error('not this side\'s turn to write a handshake message');
    }
    const tokens = this.#spec.messages[this.#index];
    // Checked before any state changes: every message here is e's + payload + tag (psk0 keys
    // the cipher before the first payload).
    const eCount = tokens.filter((t) => t === 'e').length;
    if (DHLEN * eCount + payload.length + TAGLEN > MAX_MESSAGE_LEN) {
      throw new RangeError('a Noise handshake message is at most 65535 bytes');
    }
    const parts = [];
    for (const token of tokens) {
      if (token === 'e') {
        this.#e ??= x25519.utils.randomSecretKey();
        const ePub = x25519.getPublicKey(this.#e);
        parts.push(ePub);
        this.#mixEphemeral(ePub);
      } else {
        this.#mixSecret(token);
      }
    }
    parts.push(this.#sym.encryptAndHash(payload));
    this.#index += 1;
    return concatBytes(...parts);
  }

  /** @param {Uint8Array} message @returns {Uint8Array} the payload */
  readMessage(message) {
    if (this.#failed || this.finished || this.#myTurn() || message.length > MAX_MESSAGE_LEN) {
      this.#failed = true;
      throw new PeerbeamError('interception', NOISE_FAILED);
    }
    let payload;
    try {
      payload = this.#read(message);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
    this.#index += 1;
    return payload;
  }

  /** @param {Uint8Array} message */
  #read(message) {
    let pos = 0;
    for (const token of this.#spec.messages[this.#index]) {
      if (token === 'e') {
        if (message.length - pos < DHLEN) throw new PeerbeamError('interception', NOISE_FAILED);
        this.#re = message.slice(pos, pos + DHLEN);
        pos += DHLEN;
        this.#mixEphemeral(this.#re);
      } else {
        this.#mixSecret(token);
      }
    }
    return this.#sym.decryptAndHash(message.subarray(pos));
  }

  /** @param {Uint8Array} ePub */
  #mixEphemeral(ePub) {
    this.#sym.mixHash(ePub);
    // §9.2: in a psk handshake an ephemeral key is also mixed into the key, so that the
    // encryption key never depends on the psk alone.
    this.#sym.mixKey(ePub);
  }

  /** @param {Token} token */
  #mixSecret(token) {
    if (token === 'psk') {
      this.#sym.mixKeyAndHash(this.#psk);
      return;
    }
    // §5.3: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder; "se" mirrors.
    let [first, second] = token;
    if (!this.#initiator) [first, second] = [second, first];
    const local = first === 'e' ? this.#e : this.#s;
    const remote = second === 'e' ? this.#re : this.#rs;
    if (local === null || remote === null) throw new Error(`missing key for ${token}`);
    this.#sym.mixKey(isStaticKey(local) ? local.dh(remote) : dh(local, remote));
  }

  /**
   * The transport after Split() (§5.2); the same object on every call. Splitting twice would
   * hand out a second pair of ciphers starting again at nonce 0, reusing (key, nonce) pairs.
   * @returns {Transport}
   */
  transport() {
    if (!this.finished || this.#failed) throw new Error('the handshake is not finished');
    if (this.#transport === null) {
      const [c1, c2] = this.#sym.split();
      const [send, receive] = this.#initiator ? [c1, c2] : [c2, c1];
      this.#transport = new Transport(send, receive, {
        handshakeHash: this.#sym.h,
        chainingKey: this.#sym.ck,
        remoteStatic: this.#rs,
      });
    }
    return this.#transport;
  }
}
