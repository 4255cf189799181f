// One RTCPeerConnection with one data channel, bound to the Noise session: the port of
// peer_agent/rtc.py, with the same three rules (DESIGN "Pairing" step 5):
//
// * exactly one sha-256 DTLS fingerprint per side (sdp.js);
// * the first message each side sends on the channel is a MAC over (role, handshake hash,
//   local and remote fingerprints) under a key derived from the Noise chaining key; until the
//   peer's MAC verifies nothing else is read or sent, and a mismatch closes the channel;
// * every message is capped at 64 KiB by us.
//
// ICE servers are always the server's list, passed explicitly. Host candidates trickle
// (RFC 8838) as the browser finds them; Chromium hides them behind ".local" mDNS names, which
// the Python side resolves (aioice, dnspython < 2.9.1) or learns as peer-reflexive from our
// checks to its own host candidates, which it puts in its answer.

import { bindingKey, bindingMac, verifyBinding } from '../core/binding.js';
import { decodeChannel, encodeChannel } from '../core/channel.js';
import { PeerbeamError } from '../core/errors.js';
import { MAX_FRAME_BYTES } from '../core/frames.js';
import { describePath, gatheredTypes } from '../core/path.js';
import { keepSha256Fingerprint, remoteFingerprint } from '../core/sdp.js';

// Flow control for frames (DESIGN "What flows once connected"): send while the channel's
// buffer holds less than HIGH_WATER, then wait for the browser's bufferedamountlow event.
const HIGH_WATER_BYTES = 1024 * 1024;
const LOW_WATER_BYTES = 256 * 1024;

/** @typedef {'initiator' | 'responder'} Role */
/** @typedef {import('../core/channel.js').ChannelMessage} ChannelMessage */

/**
 * @typedef {object} Binding what the channel MAC binds
 * @property {Role} role
 * @property {Uint8Array} handshakeHash
 * @property {Uint8Array} chainingKey
 */

export class RtcLink {
  /** @type {RTCDataChannel | null} */ #channel = null;
  #localFp = '';
  #remoteFp = '';
  #key;
  #binding;
  #offerSent = false;
  /** @type {RTCIceCandidate[]} */ #earlyCandidates = [];
  /** @type {(value: void) => void} */ #resolveBound = () => {};
  /** @type {(error: PeerbeamError) => void} */ #rejectBound = () => {};
  #bound = false;
  /** @type {(reason: string) => void} */ #resolveClosed = () => {};
  #closed = false;

  /**
   * @param {import('../core/wire.js').IceServer[]} iceServers the server's list, possibly empty
   * @param {Binding} binding
   * @param {(signal: import('../core/signals.js').Signal) => void} sendSignal trickles our candidates
   */
  constructor(iceServers, binding, sendSignal) {
    this.pc = new RTCPeerConnection({
      iceServers: iceServers.map((s) => ({
        urls: s.urls,
        ...(s.username !== null ? { username: s.username } : {}),
        ...(s.credential !== null ? { credential: s.credential } : {}),
      })),
    });
    this.#binding = binding;
    this.#key = bindingKey(binding.chainingKey);
    this.sendSignal = sendSignal;
    /** Bound: the channel is open and the peer's MAC verified. */
    this.bound = new Promise((resolve, reject) => {
      this.#resolveBound = resolve;
      this.#rejectBound = reject;
    });
    this.bound.catch(() => {});
    /** Resolves with a reason once the connection is gone. @type {Promise<string>} */
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    /** @type {(message: ChannelMessage) => void} */
    this.onMessage = () => {};
    /** @type {(error: PeerbeamError) => void} told when a message after binding is refused */
    this.onRefused = () => {};
    /** @type {(data: Uint8Array) => void} a binary message (a frame) after binding */
    this.onFrame = () => {};

    this.pc.onicecandidate = (event) => {
      if (!this.#offerSent) {
        if (event.candidate) this.#earlyCandidates.push(event.candidate);
        return;
      }
      this.#trickle(event.candidate);
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      if (state === 'failed' || state === 'closed') this.#setClosed(`connection ${state}`);
    };
  }

  /** @param {RTCIceCandidate | null} candidate null: end of candidates */
  #trickle(candidate) {
    try {
      this.sendSignal(candidate && candidate.candidate
        ? { t: 'rtc.ice', candidate: candidate.candidate, sdp_mid: candidate.sdpMid, sdp_mline_index: candidate.sdpMLineIndex }
        : { t: 'rtc.ice', candidate: '' });
    } catch {
      // The dialogue is gone; the connect timeout reports it.
    }
  }

  /** The offer, with our data channel (ordered, label "peerbeam"). */
  async makeOffer() {
    this.#attach(this.pc.createDataChannel('peerbeam', { ordered: true }));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const kept = keepSha256Fingerprint(/** @type {RTCSessionDescription} */ (this.pc.localDescription).sdp);
    this.#localFp = kept.fingerprint;
    return { t: 'rtc.sdp', type: 'offer', sdp: kept.sdp };
  }

  /** Call once the offer has gone out: candidates found meanwhile follow it. */
  offerSent() {
    this.#offerSent = true;
    for (const candidate of this.#earlyCandidates.splice(0)) this.#trickle(candidate);
    if (this.pc.iceGatheringState === 'complete') this.#trickle(null);
  }

  /** @param {import('../core/signals.js').Signal} answer */
  async acceptAnswer(answer) {
    if (answer.type !== 'answer') throw new PeerbeamError('bad_message', 'Expected a connection answer.');
    this.#remoteFp = remoteFingerprint(/** @type {string} */ (answer.sdp));
    await this.pc.setRemoteDescription({ type: 'answer', sdp: /** @type {string} */ (answer.sdp) });
  }

  /** A trickled remote candidate; empty means end-of-candidates. @param {import('../core/signals.js').Signal} signal */
  async addCandidate(signal) {
    const text = /** @type {string} */ (signal.candidate);
    try {
      if (!text) {
        await this.pc.addIceCandidate();
        return;
      }
      await this.pc.addIceCandidate({
        candidate: text.startsWith('candidate:') ? text : `candidate:${text}`,
        sdpMid: /** @type {string | null} */ (signal.sdp_mid) ?? '0',
        sdpMLineIndex: /** @type {number | null} */ (signal.sdp_mline_index) ?? 0,
      });
    } catch (err) {
      console.info(`[rtc] ignored a remote candidate (${/** @type {Error} */ (err).message})`);
    }
  }

  /** @param {RTCDataChannel} channel */
  #attach(channel) {
    this.#channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER_BYTES;
    channel.onopen = () => this.#sendBind();
    channel.onmessage = (event) => this.#receive(event.data);
    channel.onclose = () => this.#setClosed('channel closed');
  }

  #sendBind() {
    const channel = /** @type {RTCDataChannel} */ (this.#channel);
    if (!this.#localFp || !this.#remoteFp) {
      this.#fail(new PeerbeamError('interception', 'The channel opened before both fingerprints were known.'));
      return;
    }
    const { role, handshakeHash } = this.#binding;
    const mac = bindingMac(this.#key, role, handshakeHash, this.#localFp, this.#remoteFp);
    channel.send(encodeChannel({ t: 'bind', mac }));
  }

  /** @param {string | ArrayBuffer} data */
  #receive(data) {
    const size = typeof data === 'string' ? data.length : data.byteLength;
    if (size > MAX_FRAME_BYTES * (typeof data === 'string' ? 2 : 1)) {
      if (!this.#bound) this.#fail(new PeerbeamError('frame_too_large', 'Your PC sent a message over 64 KiB.'));
      else this.onRefused(new PeerbeamError('frame_too_large'));
      return;
    }
    if (typeof data !== 'string') {
      // Binary frames are file data and thumbnails: never before the binding MAC, never
      // parsed as JSON.
      if (!this.#bound) this.#fail(new PeerbeamError('interception'));
      else this.onFrame(new Uint8Array(data));
      return;
    }
    let message;
    try {
      message = decodeChannel(data);
    } catch (err) {
      if (!this.#bound) this.#fail(new PeerbeamError('interception'));
      else this.onRefused(/** @type {PeerbeamError} */ (err));
      return;
    }
    if (!this.#bound) {
      this.#checkBind(message);
      return;
    }
    if (message === null || message.t === 'bind') return; // not handled yet; a duplicate bind
    this.onMessage(message);
  }

  /** @param {ChannelMessage | null} message */
  #checkBind(message) {
    if (message === null || message.t !== 'bind') {
      this.#fail(new PeerbeamError('interception'));
      return;
    }
    const peerRole = this.#binding.role === 'initiator' ? 'responder' : 'initiator';
    try {
      // The peer's "local" fingerprint is our remote one, and the other way round.
      verifyBinding(this.#key, peerRole, this.#binding.handshakeHash, this.#remoteFp, this.#localFp,
        /** @type {Uint8Array} */ (message.mac));
    } catch {
      this.#fail(new PeerbeamError('interception'));
      return;
    }
    this.#bound = true;
    this.#resolveBound();
  }

  /** @param {PeerbeamError} error */
  #fail(error) {
    this.#rejectBound(error);
    this.#setClosed(error.message);
    this.close();
  }

  /** @param {string} reason */
  #setClosed(reason) {
    if (!this.#bound) {
      this.#rejectBound(new PeerbeamError('connect_timeout', `The connection closed before it was ready (${reason}).`));
    }
    if (!this.#closed) {
      this.#closed = true;
      this.#resolveClosed(reason);
    }
  }

  get isBound() {
    return this.#bound && !this.#closed;
  }

  /** @param {ChannelMessage} message */
  send(message) {
    if (!this.isBound || this.#channel?.readyState !== 'open') {
      throw new PeerbeamError('peer_gone', 'The connection is closed.');
    }
    this.#channel.send(encodeChannel(message));
  }

  /** One binary frame (frames.js encodes and caps it). @param {Uint8Array} frame */
  sendFrame(frame) {
    if (!this.isBound || this.#channel?.readyState !== 'open') {
      throw new PeerbeamError('peer_gone', 'The connection is closed.');
    }
    if (frame.length > MAX_FRAME_BYTES) throw new RangeError('a frame is at most 64 KiB');
    this.#channel.send(frame);
  }

  /** Resolves at once below the high-water mark; past it, once the buffer drained to the low one. */
  writable() {
    const channel = this.#channel;
    if (channel === null || channel.bufferedAmount < HIGH_WATER_BYTES) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        channel.removeEventListener('bufferedamountlow', done);
        channel.removeEventListener('close', done);
        resolve(undefined);
      };
      channel.addEventListener('bufferedamountlow', done);
      channel.addEventListener('close', done);
    });
  }

  /** The path in use, or null before ICE selected a pair. */
  async path() {
    return describePath((await this.pc.getStats()).values());
  }

  /** The candidate types gathered here (to tell "the relay never answered" apart). */
  async gathered() {
    return gatheredTypes((await this.pc.getStats()).values());
  }

  close() {
    this.#setClosed('closed');
    try {
      this.#channel?.close();
      this.pc.close();
    } catch {
      // already closed
    }
  }
}
