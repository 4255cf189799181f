// The end-to-end layer between two devices, carried through the server as opaque envelopes: the
// port of peer_agent/handshake.py SecureSession.
//
// Pure: no sockets, no clocks. The session runs the Noise handshake (NKpsk0 for first pairing,
// KKpsk0 for reconnect; DESIGN "Pairing" step 4, "Reconnect") and then seals every peer signal
// (SDP, ICE candidates, accept/reject) as a Noise transport message, so the signaling server
// routes ciphertext only. Envelope framing (the bytes inside `relay.data`): one kind byte, then
//
// * 0x01 a Noise handshake message; its payload is our Hello;
// * 0x02 a Noise transport message; the plaintext is one PeerSignal (JSON, see signals.js);
// * 0x03 abort, unauthenticated: a short ASCII code. It can only make a pairing fail, which a
//   hostile server can do anyway by dropping messages, so it needs no key.
//
// Any AEAD failure, a message out of turn, or an identity other than the one expected is
// treated as interception: the session is dead and the caller must abort on both sides.

import { concatBytes, equalBytes, utf8Encode } from './bytes.js';
import { PeerbeamError } from './errors.js';
import { comparisonCode, pairingPsk, reconnectPsk } from './kdf.js';
import { HandshakeState, staticPublic } from './noise.js';
import { decodeSignal, encodeSignal } from './signals.js';

/** @typedef {'initiator' | 'responder'} Role */
/** @typedef {import('./signals.js').Signal} Signal */

export const Kind = Object.freeze({ HANDSHAKE: 1, TRANSPORT: 2, ABORT: 3 });

// The prologue binds the purpose of the handshake (Noise rev 34 §6): a pairing message cannot
// be replayed into a reconnect and the other way round.
export const PAIR_PROLOGUE = utf8Encode('peerbeam/1 pair');
export const RECONNECT_PROLOGUE = utf8Encode('peerbeam/1 reconnect');
const MAX_ABORT_REASON = 64;

/**
 * @typedef {{type: 'HandshakeCompleted', peer: Readonly<Signal>, code: string,
 *            handshakeHash: Uint8Array, chainingKey: Uint8Array}} HandshakeCompleted
 *   The handshake finished. `peer` is the other side's Hello, `code` the 6-digit comparison
 *   code; the pairing record's secret is kdf.pairSecret(chainingKey).
 * @typedef {{type: 'SignalReceived', signal: Readonly<Signal>}} SignalReceived
 * @typedef {{type: 'PeerAborted', reason: string}} PeerAborted
 *   The other side gave up (it saw a failure we may not have seen).
 * @typedef {HandshakeCompleted | SignalReceived | PeerAborted} SessionEvent
 * @typedef {{envelopes: Uint8Array[], events: SessionEvent[]}} Received
 *   Envelopes to send to the peer, and what happened.
 */

/**
 * An abort envelope; the reason is cut to 64 ASCII bytes, other characters become "?".
 * @param {string} reason a stable code such as "interception" or "pairing_rejected"
 */
export function abortEnvelope(reason) {
  const ascii = Array.from(reason, (ch) => (ch.codePointAt(0) < 0x80 ? ch : '?')).join('');
  return concatBytes(new Uint8Array([Kind.ABORT]), utf8Encode(ascii).slice(0, MAX_ABORT_REASON));
}

/**
 * The Hello this device announces.
 * @param {string} name shown to the other user, 1..64 characters
 * @param {Uint8Array | import('./noise.js').StaticKey} identity this device's long-term X25519
 *   private key, raw or held (a non-extractable WebCrypto key)
 * @param {'pc' | 'phone' | 'cli'} device
 * @returns {Signal}
 */
export function helloFor(name, identity, device) {
  return { t: 'hello', name, identity_key: staticPublic(identity), device, v: 1 };
}

/** One Noise session between two devices, fed envelopes, returning envelopes and events. */
export class SecureSession {
  #helloBytes;
  #expectedRemote;
  #hs;
  /** @type {import('./noise.js').Transport | null} */ #transport = null;
  #dead = false;

  /**
   * Prefer SecureSession.forPairing and SecureSession.forReconnect.
   * @param {object} options
   * @param {Role} options.role
   * @param {Signal} options.hello this device's Hello (see helloFor)
   * @param {Uint8Array | import('./noise.js').StaticKey} options.identity this device's long-term X25519
   *   private key, raw or held
   * @param {Uint8Array} options.psk
   * @param {Uint8Array} options.prologue
   * @param {'NKpsk0' | 'KKpsk0'} options.pattern
   * @param {Uint8Array | null} options.remoteKey the identity the peer must announce, if known
   * @param {Uint8Array} [options.ephemeral] test vectors only: reusing one gives up forward secrecy
   */
  constructor({ role, hello, identity, psk, prologue, pattern, remoteKey, ephemeral }) {
    if (role !== 'initiator' && role !== 'responder') throw new RangeError(`bad role ${role}`);
    if (hello?.t !== 'hello') throw new TypeError('hello is a Hello signal');
    /** @type {Role} */
    this.role = role;
    this.#helloBytes = encodeSignal(hello);
    this.#expectedRemote = remoteKey ?? null;
    // In NK the initiator (the joining device) has no static key: it proves knowledge of the
    // QR secret through the psk and announces its identity key inside the encrypted payload;
    // the first KK reconnect then authenticates that key.
    this.#hs = new HandshakeState(pattern, {
      initiator: role === 'initiator',
      prologue,
      psk,
      s: pattern === 'KKpsk0' || role === 'responder' ? identity : undefined,
      rs: role === 'initiator' || pattern === 'KKpsk0' ? (remoteKey ?? undefined) : undefined,
      e: ephemeral,
    });
  }

  /**
   * NKpsk0: the joiner (initiator) knows the agent's key and the secret from the QR.
   * @param {{role: Role, hello: Signal, identity: Uint8Array | import('./noise.js').StaticKey, qrSecret: Uint8Array,
   *          agentKey: Uint8Array | null, ephemeral?: Uint8Array}} options
   */
  static forPairing({ role, hello, identity, qrSecret, agentKey, ephemeral }) {
    return new SecureSession({
      role,
      hello,
      identity,
      psk: pairingPsk(qrSecret),
      prologue: PAIR_PROLOGUE,
      pattern: 'NKpsk0',
      remoteKey: role === 'initiator' ? agentKey : null,
      ephemeral,
    });
  }

  /**
   * KKpsk0: both long-term keys known from the pairing record, psk from its secret.
   * @param {{role: Role, hello: Signal, identity: Uint8Array | import('./noise.js').StaticKey, pairSecret: Uint8Array,
   *          peerKey: Uint8Array, ephemeral?: Uint8Array}} options
   */
  static forReconnect({ role, hello, identity, pairSecret, peerKey, ephemeral }) {
    return new SecureSession({
      role,
      hello,
      identity,
      psk: reconnectPsk(pairSecret),
      prologue: RECONNECT_PROLOGUE,
      pattern: 'KKpsk0',
      remoteKey: peerKey,
      ephemeral,
    });
  }

  get established() {
    return this.#transport !== null;
  }

  /** The initiator's first handshake message. @returns {Uint8Array} */
  start() {
    if (this.role !== 'initiator') throw new Error('only the initiator starts');
    return concatBytes(new Uint8Array([Kind.HANDSHAKE]), this.#hs.writeMessage(this.#helloBytes));
  }

  /** @param {Signal} signal @returns {Uint8Array} the envelope to relay */
  seal(signal) {
    if (this.#transport === null || this.#dead) throw new Error('session not established');
    return concatBytes(new Uint8Array([Kind.TRANSPORT]), this.#transport.encrypt(encodeSignal(signal)));
  }

  /**
   * Feed one envelope from the peer. Throws PeerbeamError "interception" (and the session is
   * dead) on anything but the next valid message.
   * @param {Uint8Array} envelope
   * @returns {Received}
   */
  receive(envelope) {
    if (this.#dead) throw new PeerbeamError('interception', 'The session was already aborted.');
    if (envelope.length === 0) this.#fail();
    const kind = envelope[0];
    const body = envelope.subarray(1);
    if (kind === Kind.ABORT) {
      this.#dead = true;
      const reason = Array.from(body, (b) => (b < 0x80 ? String.fromCharCode(b) : '\ufffd')).join('');
      return { envelopes: [], events: [{ type: 'PeerAborted', reason }] };
    }
    try {
      if (kind === Kind.HANDSHAKE && this.#transport === null) return this.#onHandshake(body);
      if (kind === Kind.TRANSPORT && this.#transport !== null) {
        const signal = decodeSignal(this.#transport.decrypt(body));
        return { envelopes: [], events: [{ type: 'SignalReceived', signal }] };
      }
    } catch (err) {
      if (err instanceof PeerbeamError) this.#fail();
      throw err;
    }
    this.#fail(); // a message out of turn
  }

  /** @param {Uint8Array} body @returns {Received} */
  #onHandshake(body) {
    const peer = decodeSignal(this.#hs.readMessage(body));
    if (peer.t !== 'hello') this.#fail();
    // The identity a device announces must be the one we expected (from the QR for the agent,
    // from the pairing record for reconnects), or someone stands in between.
    const announced = /** @type {Uint8Array} */ (peer.identity_key);
    if (this.#expectedRemote !== null && !equalBytes(announced, this.#expectedRemote)) this.#fail();
    const envelopes = [];
    if (this.role === 'responder') {
      envelopes.push(concatBytes(new Uint8Array([Kind.HANDSHAKE]), this.#hs.writeMessage(this.#helloBytes)));
    }
    if (!this.#hs.finished) this.#fail();
    this.#transport = this.#hs.transport();
    const { handshakeHash, chainingKey } = this.#transport;
    return {
      envelopes,
      events: [{ type: 'HandshakeCompleted', peer, code: comparisonCode(handshakeHash), handshakeHash, chainingKey }],
    };
  }

  /** @returns {never} */
  #fail() {
    this.#dead = true;
    throw new PeerbeamError('interception');
  }
}
