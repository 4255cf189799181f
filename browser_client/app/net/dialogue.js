// The encrypted conversation between two devices, routed by the signaling server: the port of
// peer_agent/session.py Dialogue. It pumps the socket into the pure SecureSession and back;
// trickled ICE candidates go straight to the RTC link, everything else waits in a queue for
// establish.js; anything fatal (interception, the peer leaving or aborting) settles `fatal`.

import { PeerbeamError } from '../core/errors.js';
import { Kind, abortEnvelope } from '../core/secure_session.js';
import { refusal } from './signal_socket.js';
import { Queue, within } from './timing.js';

/** @typedef {import('../core/secure_session.js').SessionEvent} SessionEvent */
/** @typedef {import('../core/signals.js').Signal} Signal */

export class Dialogue {
  /** @type {Queue<SessionEvent>} */ #events = new Queue();
  /** @type {import('./rtc_link.js').RtcLink | null} */ #link = null;
  /** @type {Signal[]} */ #pendingCandidates = [];
  /** @type {(error: PeerbeamError) => void} */ #die = () => {};
  #dead = false;
  #prepare;
  #peerStatic;

  /**
   * @param {import('./signal_socket.js').SignalSocket} socket
   * @param {import('../core/secure_session.js').SecureSession} secure
   * @param {object} [held] when our identity is a held key (store/held_key.js): its prepare(),
   *   called with each public key the handshake will meet, and the peer's static key (KK)
   * @param {(publicKeys: Uint8Array[]) => Promise<void>} [held.prepare]
   * @param {Uint8Array} [held.peerStatic]
   */
  constructor(socket, secure, { prepare, peerStatic } = {}) {
    this.socket = socket;
    this.secure = secure;
    this.#prepare = prepare;
    this.#peerStatic = peerStatic;
    /** Rejects once, with the PeerbeamError that ended the dialogue. @type {Promise<never>} */
    this.fatal = new Promise((_, reject) => {
      this.#die = (error) => {
        if (this.#dead) return;
        this.#dead = true;
        this.error = error;
        reject(error);
        this.#events.close();
      };
    });
    this.fatal.catch(() => {}); // observed by whoever races against it
    /** @type {PeerbeamError | undefined} */
    this.error = undefined;
    this.#pump();
  }

  get dead() {
    return this.#dead;
  }

  async #pump() {
    try {
      for (;;) {
        const message = await this.socket.recv();
        if (message === null) {
          this.#die(new PeerbeamError('peer_gone', 'The connection to the peerbeam server was lost.'));
          return;
        }
        if (message.t === 'peer.left') {
          this.#die(new PeerbeamError('peer_gone', 'Your PC went offline.'));
          return;
        }
        if (message.t === 'error') {
          this.#die(refusal(message));
          return;
        }
        if (message.t === 'relay') await this.#onEnvelope(/** @type {Uint8Array} */ (message.data));
      }
    } catch (err) {
      this.#die(err instanceof PeerbeamError ? err : new PeerbeamError('internal', `Internal error: ${err}`));
    }
  }

  /** @param {Uint8Array} envelope */
  async #onEnvelope(envelope) {
    // Every handshake message here opens with the sender's ephemeral key (NKpsk0 and KKpsk0:
    // "psk" writes nothing, then "e"): a held key computes its DH with it now, before the
    // synchronous core needs it.
    if (this.#prepare && envelope[0] === Kind.HANDSHAKE && envelope.length >= 33) {
      await this.#prepare([envelope.slice(1, 33)]);
    }
    let received;
    try {
      received = this.secure.receive(envelope);
    } catch (err) {
      if (err instanceof PeerbeamError && err.code === 'interception') {
        // Tell the other side so that both report the same thing, then stop reading.
        try {
          this.socket.send({ t: 'relay', data: abortEnvelope('interception') });
        } catch {
          // the socket is gone: nothing to tell
        }
      }
      throw err;
    }
    for (const out of received.envelopes) this.socket.send({ t: 'relay', data: out });
    for (const event of received.events) {
      if (event.type === 'PeerAborted') {
        this.#die(event.reason === 'interception'
          ? new PeerbeamError('interception')
          : new PeerbeamError('peer_gone', `Your PC stopped the connection (${event.reason}).`));
      } else if (event.type === 'SignalReceived' && event.signal.t === 'rtc.ice') {
        if (this.#link === null) this.#pendingCandidates.push(event.signal);
        else await this.#link.addCandidate(event.signal);
      } else if (event.type === 'SignalReceived' && event.signal.t === 'bye') {
        const said = /** @type {string} */ (event.signal.message);
        this.#die(new PeerbeamError('peer_gone', said || 'Your PC closed the connection.'));
      } else if (event.type === 'SignalReceived' && event.signal.t === 'pair.removed') {
        this.#die(new PeerbeamError('unknown_device'));
      } else {
        this.#events.put(event);
      }
    }
  }

  /** From now on trickled candidates go straight to `link` (buffered ones first). @param {import('./rtc_link.js').RtcLink} link */
  async attach(link) {
    this.#link = link;
    const pending = this.#pendingCandidates.splice(0);
    for (const candidate of pending) await link.addCandidate(candidate);
  }

  /**
   * Await `promise` unless the dialogue dies first or `ms` pass.
   * @template T
   * @param {Promise<T>} promise
   * @param {number} ms
   * @param {string} what "answer the secure handshake": what the other device did not do
   * @returns {Promise<T>}
   */
  race(promise, ms, what) {
    return within(promise, ms, `Your PC did not ${what} within ${Math.round(ms / 1000)} s.`, this.fatal);
  }

  /** The next handshake completion; anything else first is interception. @param {number} ms */
  async handshake(ms) {
    const event = await this.race(this.#events.get(), ms, 'answer the secure handshake');
    if (event === null) throw this.error ?? new PeerbeamError('peer_gone');
    if (event.type !== 'HandshakeCompleted') throw new PeerbeamError('interception');
    return event;
  }

  /**
   * The next signal, which must be of kind `tag` (a PairReject instead of a PairAccept is the
   * user saying no on the PC).
   * @param {string} tag
   * @param {number} ms
   * @param {string} what
   * @returns {Promise<Signal>}
   */
  async expect(tag, ms, what) {
    const event = await this.race(this.#events.get(), ms, what);
    if (event === null) throw this.error ?? new PeerbeamError('peer_gone');
    if (event.type === 'SignalReceived' && event.signal.t === tag) return event.signal;
    if (event.type === 'SignalReceived' && event.signal.t === 'pair.reject' && tag === 'pair.accept') {
      throw new PeerbeamError('pairing_rejected', `Your PC declined: ${event.signal.message}`);
    }
    const got = event.type === 'SignalReceived' ? event.signal.t : event.type;
    throw new PeerbeamError('bad_message', `Your PC sent ${got} out of order.`);
  }

  /** Seal and send one signal. @param {Signal} signal */
  send(signal) {
    this.socket.send({ t: 'relay', data: this.secure.seal(signal) });
  }

  /** The initiator's first handshake message. */
  async start() {
    if (this.#prepare && this.#peerStatic) await this.#prepare([this.#peerStatic]);
    this.socket.send({ t: 'relay', data: this.secure.start() });
  }

  close() {
    this.#die(new PeerbeamError('peer_gone', 'The session was closed.'));
    this.socket.close();
  }
}
