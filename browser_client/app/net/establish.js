// From the first Noise message to a bound data channel, every wait bounded: the port of
// peer_agent/session.py establish() for the side a phone always plays, the initiator (it
// joins with the QR, and its pairing record keeps that role for every reconnect).
//
// handshake -> (pairing: wait for the PC user's accept) -> our offer -> their answer ->
// candidates trickle both ways -> the channel opens -> binding MACs verified.

import { PeerbeamError } from '../core/errors.js';
import { RtcLink } from './rtc_link.js';
import { within } from './timing.js';

/** DESIGN / peer_agent/config.py connect_timeout: from "the handshake answered" to "bound". */
export const CONNECT_TIMEOUT_MS = 15_000;
// The PC's user is reading the code and deciding: give them time (session.py: 300 s).
const ACCEPT_TIMEOUT_MS = 300_000;

/**
 * @param {import('./dialogue.js').Dialogue} dialogue
 * @param {object} options
 * @param {boolean} options.pairing first contact (wait for the accept) or a reconnect
 * @param {import('../core/wire.js').IceServer[]} options.iceServers
 * @param {(done: import('../core/secure_session.js').HandshakeCompleted) => void} [options.onHandshake]
 * @param {() => void} [options.onAccepted]
 * @returns {Promise<{done: import('../core/secure_session.js').HandshakeCompleted, link: RtcLink}>}
 */
export async function establish(dialogue, { pairing, iceServers, onHandshake, onAccepted }) {
  await dialogue.start();
  const done = await dialogue.handshake(CONNECT_TIMEOUT_MS);
  onHandshake?.(done);
  if (pairing) {
    await dialogue.expect('pair.accept', ACCEPT_TIMEOUT_MS, 'accept the pairing');
    onAccepted?.();
  }
  const link = new RtcLink(iceServers, { role: 'initiator', handshakeHash: done.handshakeHash,
    chainingKey: done.chainingKey }, (signal) => dialogue.send(signal));
  try {
    dialogue.send(await link.makeOffer());
    link.offerSent();
    const answer = await dialogue.expect('rtc.sdp', CONNECT_TIMEOUT_MS, 'answer the connection offer');
    await link.acceptAnswer(answer);
    await dialogue.attach(link);
    try {
      await within(link.bound, CONNECT_TIMEOUT_MS, 'no path', dialogue.fatal);
    } catch (err) {
      // No path in time, or the PC gave up looking for one first (its own connect timeout;
      // it then leaves the room): either way, say what failed.
      if (err instanceof PeerbeamError && (err.code === 'connect_timeout' || err.code === 'peer_gone')) {
        throw await noPath(link, iceServers, err.code === 'peer_gone');
      }
      throw err;
    }
  } catch (err) {
    link.close();
    throw err;
  }
  return { done, link };
}

/**
 * Why no path worked, in words: with a relay configured and no relay candidate gathered, the
 * relay is what failed (the Python side's relay_check.py says the same in its own way).
 * @param {RtcLink} link
 * @param {import('../core/wire.js').IceServer[]} iceServers
 * @param {boolean} pcGaveUp the PC stopped first
 */
async function noPath(link, iceServers, pcGaveUp) {
  const seconds = CONNECT_TIMEOUT_MS / 1000;
  const when = pcGaveUp ? 'in time' : `within ${seconds} s`;
  const relays = iceServers.some((s) => s.urls.some((u) => /^turns?:/.test(u)));
  let gathered = new Set();
  try {
    gathered = await link.gathered();
  } catch {
    // the connection is already closed: no stats to read
  }
  if (relays && !gathered.has('relay')) {
    return new PeerbeamError('relay_unavailable',
      `No direct path to your PC worked ${when}, and the relay server did not answer.`);
  }
  return new PeerbeamError('connect_timeout', `No network path to your PC worked ${when}` +
    (relays ? ', not even through the relay server.' : '; across different networks a relay server (TURN) is needed.'));
}
