// The three ways a phone meets its PC through the signaling server, without any UI: look at
// a QR's token (pair.peek), pair through it (pair.join + NK), and meet a paired PC again
// (rendezvous + KK). The port of peer_agent/node.py join() and _rendezvous() for the phone.

import { b64urlEncode } from '../core/bytes.js';
import { PeerbeamError } from '../core/errors.js';
import { dayOf, pairSecret, rendezvousId } from '../core/kdf.js';
import { SecureSession, helloFor } from '../core/secure_session.js';
import { Dialogue } from './dialogue.js';
import { establish } from './establish.js';
import { SignalSocket } from './signal_socket.js';

const ANSWER_MS = 10_000;
const NO_ANSWER = 'The peerbeam server did not answer in time.';

/** @typedef {import('../store/pairings.js').Identity} Identity */
/** @typedef {import('../store/pairings.js').PairingRecord} PairingRecord */
/** @typedef {import('../core/wire.js').IceServer} IceServer */
/**
 * A connected, bound session's parts.
 * @typedef {{dialogue: Dialogue, link: import('./rtc_link.js').RtcLink,
 *            done: import('../core/secure_session.js').HandshakeCompleted}} Met
 */

/**
 * What a Dialogue needs when the identity is a held (non-extractable) key.
 * @param {Identity} identity
 * @param {Uint8Array} [peerStatic]
 */
function held(identity, peerStatic) {
  const key = identity.key;
  return key instanceof Uint8Array ? {} : { prepare: (/** @type {Uint8Array[]} */ keys) => key.prepare(keys), peerStatic };
}

/**
 * The name of the PC that shows this token, and when the token expires; burns nothing.
 * @param {string} origin
 * @param {string} token
 */
export async function peek(origin, token) {
  const socket = await SignalSocket.open(origin);
  try {
    socket.send({ t: 'pair.peek', token });
    const info = await socket.expect(['pair.info'], ANSWER_MS, NO_ANSWER);
    return { name: /** @type {string} */ (info.name), expiresAt: /** @type {number} */ (info.expires_at) };
  } finally {
    socket.close();
  }
}

/**
 * Claim the token (only ever after the user's tap), run the NK handshake with the QR secret,
 * wait for the PC user's accept, connect. Returns the session's parts and the new record.
 * @param {object} options
 * @param {string} options.origin
 * @param {import('../core/link.js').PairingLink} options.link
 * @param {Identity} options.identity
 * @param {string} options.name this phone's name
 * @param {(code: string) => void} options.onCode the handshake's 6-digit code, to compare
 * @param {() => void} options.onAccepted
 * @returns {Promise<Met & {record: Omit<PairingRecord, 'id'>}>}
 */
export async function pair({ origin, link, identity, name, onCode, onAccepted }) {
  const socket = await SignalSocket.open(origin);
  let joined;
  try {
    socket.send({ t: 'pair.join', token: link.token, name });
    joined = await socket.expect(['pair.joined'], ANSWER_MS, NO_ANSWER);
  } catch (err) {
    socket.close();
    throw err;
  }
  const dialogue = new Dialogue(socket, SecureSession.forPairing({
    role: 'initiator', hello: helloFor(name, identity.key, 'phone'), identity: identity.key,
    qrSecret: link.secret, agentKey: link.agentKey,
  }), held(identity));
  try {
    const { done, link: rtc } = await establish(dialogue, {
      pairing: true,
      iceServers: /** @type {IceServer[]} */ (joined.ice_servers),
      onHandshake: (d) => onCode(d.code),
      onAccepted,
    });
    const now = Date.now() / 1000;
    const record = {
      peerName: /** @type {string} */ (done.peer.name), peerKey: /** @type {Uint8Array} */ (done.peer.identity_key),
      pairSecret: pairSecret(done.chainingKey), role: /** @type {'initiator'} */ ('initiator'), server: origin,
      pairedAt: now, lastSeen: now,
    };
    return { dialogue, link: rtc, done, record };
  } catch (err) {
    dialogue.close();
    throw err;
  }
}

/**
 * Meet a paired PC again: both present the rendezvous id of the day, then KK and WebRTC.
 * @param {object} options
 * @param {PairingRecord} options.record
 * @param {Identity} options.identity
 * @param {string} options.name this phone's name
 * @param {AbortSignal} options.signal aborting closes the socket (forget, "try again now")
 * @param {() => void} options.onWaiting the PC is not there (yet): we wait for it
 * @param {() => void} options.onMatched
 * @returns {Promise<Met>}
 */
export async function rendezvous({ record, identity, name, signal, onWaiting, onMatched }) {
  const socket = await SignalSocket.open(record.server);
  const abort = () => socket.close();
  signal.addEventListener('abort', abort);
  try {
    if (signal.aborted) throw new PeerbeamError('peer_gone', 'Stopped.');
    const day = dayOf(Date.now() / 1000);
    socket.send({ t: 'rendezvous', rid: b64urlEncode(rendezvousId(record.pairSecret, day)) });
    let matched = await socket.expect(['rendezvous.waiting', 'rendezvous.matched'], ANSWER_MS, NO_ANSWER);
    if (matched.t === 'rendezvous.waiting') {
      onWaiting();
      // The rendezvous id changes at midnight UTC: wait at most until then (both sides do).
      const untilTomorrow = ((day + 1) * 86400 + 1) * 1000 - Date.now();
      matched = await socket.expect(['rendezvous.matched'], untilTomorrow, `${record.peerName} did not show up.`);
    }
    onMatched();
    const dialogue = new Dialogue(socket, SecureSession.forReconnect({
      role: record.role, hello: helloFor(name, identity.key, 'phone'), identity: identity.key,
      pairSecret: record.pairSecret, peerKey: record.peerKey,
    }), held(identity, record.peerKey));
    signal.removeEventListener('abort', abort);
    const close = () => dialogue.close();
    signal.addEventListener('abort', close);
    try {
      const met = await establish(dialogue, { pairing: false, iceServers: /** @type {IceServer[]} */ (matched.ice_servers) });
      return { dialogue, ...met };
    } catch (err) {
      dialogue.close();
      throw err;
    } finally {
      signal.removeEventListener('abort', close);
    }
  } catch (err) {
    socket.close();
    throw err;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}
