// A device's WebSocket to the signaling server (the port of peer_agent/signal_client.py):
// typed messages out, checked messages in, in order, through one queue.

import { isErrorCode, PeerbeamError } from '../core/errors.js';
import { decodeServer, encodeClient } from '../core/wire.js';
import { Queue, within } from './timing.js';

const log = (/** @type {string} */ what) => console.info(`[signal] ${what}`);

/** `http://host:port` -> `ws://host:port/v1/ws` (https -> wss). @param {string} origin */
export function wsUrl(origin) {
  const url = new URL('/v1/ws', origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/**
 * The PeerbeamError for a server `error` message: its code when this app knows it.
 * @param {{code?: unknown, message?: unknown}} message
 */
export function refusal(message) {
  const code = isErrorCode(message.code) ? /** @type {import('../core/errors.js').ErrorCode} */ (message.code) : 'internal';
  return new PeerbeamError(code, typeof message.message === 'string' && message.message ? message.message : undefined);
}

export class SignalSocket {
  /** @type {Queue<Readonly<{t: string, [field: string]: unknown}>>} */
  #inbox = new Queue();
  #ws;

  /** @param {WebSocket} ws an open socket */
  constructor(ws) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return; // the protocol has text frames only
      try {
        this.#inbox.put(decodeServer(event.data));
      } catch (err) {
        // A server speaking another schema version: say so, keep the socket.
        log(`ignored a message that does not fit the schema (${/** @type {Error} */ (err).message})`);
      }
    };
    ws.onclose = () => this.#inbox.close();
  }

  /**
   * Connect to the server of `origin`; bounded, with a sentence people understand.
   * @param {string} origin
   * @param {number} [timeoutMs]
   */
  static async open(origin, timeoutMs = 10_000) {
    const ws = new WebSocket(wsUrl(origin));
    const unreachable = new PeerbeamError(
      'server_unreachable',
      'Cannot reach the peerbeam server. Check that this phone is online (on the same Wi-Fi as your PC when ' +
        'the PC runs the server itself), then try again.',
    );
    const opened = new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(unreachable);
      ws.onclose = () => reject(unreachable);
    });
    try {
      await within(opened, timeoutMs, unreachable.message);
    } catch (err) {
      ws.close();
      throw err instanceof PeerbeamError && err.code === 'connect_timeout' ? unreachable : err;
    }
    return new SignalSocket(ws);
  }

  get closed() {
    return this.#ws.readyState >= WebSocket.CLOSING;
  }

  /** @param {{t: string, [field: string]: unknown}} message */
  send(message) {
    if (this.closed) throw new PeerbeamError('server_unreachable', 'The connection to the peerbeam server is closed.');
    this.#ws.send(encodeClient(message));
  }

  /** The next message, or null once the server closed the socket. */
  recv() {
    return this.#inbox.get();
  }

  /**
   * Wait for a message of one of `tags`. A server `error` rejects with its code; other
   * messages are skipped.
   * @param {string[]} tags
   * @param {number} timeoutMs
   * @param {string} what for the timeout sentence
   */
  async expect(tags, timeoutMs, what) {
    const wait = async () => {
      for (;;) {
        const message = await this.recv();
        if (message === null) {
          throw new PeerbeamError('server_unreachable', 'The peerbeam server closed the connection.');
        }
        if (tags.includes(message.t)) return message;
        if (message.t === 'error') throw refusal(message);
      }
    };
    return within(wait(), timeoutMs, what);
  }

  close() {
    this.#inbox.close();
    this.#ws.close();
  }
}
