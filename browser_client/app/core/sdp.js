// The one DTLS fingerprint rule (DESIGN "Pairing" step 5): the port of the SDP half of
// peer_agent/rtc.py.
//
// Each side sends exactly one sha-256 fingerprint and accepts exactly one: a certificate
// matching any of several would let the weakest hash decide (RFC 8122 §5), and the binding MAC
// (binding.js) covers that one value. Browsers emit sha-256 only today; the filter is there
// for the day they add another.

import { PeerbeamError } from './errors.js';
import { normaliseFingerprint } from './binding.js';

const FINGERPRINT = /^a=fingerprint:(\S+) (\S+)\s*$/;
const BAD_OFFER = "The other device's connection offer must carry exactly one sha-256 fingerprint.";

/** @param {string} sdp @returns {string[]} the lines, without their CRLF (RFC 8866 §5) */
function lines(sdp) {
  return sdp.split(/\r?\n/).filter((line) => line !== '');
}

/**
 * Our outgoing SDP with only its sha-256 fingerprint line(s), and that fingerprint.
 * Throws Error if there is not exactly one sha-256 value: the browser changed, a bug here.
 * @param {string} sdp
 * @returns {{sdp: string, fingerprint: string}}
 */
export function keepSha256Fingerprint(sdp) {
  const found = new Set();
  const kept = lines(sdp).filter((line) => {
    const match = FINGERPRINT.exec(line);
    if (match === null) return true;
    if (match[1].toLowerCase() !== 'sha-256') return false;
    found.add(normaliseFingerprint(match[2]));
    return true;
  });
  if (found.size !== 1) throw new Error('our own SDP has no single sha-256 fingerprint');
  return { sdp: `${kept.join('\r\n')}\r\n`, fingerprint: [...found][0] };
}

/**
 * The one sha-256 fingerprint a remote SDP may carry; anything else is refused.
 * @param {string} sdp
 * @returns {string} "AB:CD:..." upper case
 */
export function remoteFingerprint(sdp) {
  const algorithms = new Set();
  const values = new Set();
  for (const line of lines(sdp)) {
    const match = FINGERPRINT.exec(line);
    if (match === null) continue;
    algorithms.add(match[1].toLowerCase());
    values.add(match[2].toUpperCase());
  }
  if (algorithms.size !== 1 || !algorithms.has('sha-256') || values.size !== 1) {
    throw new PeerbeamError('bad_message', BAD_OFFER);
  }
  try {
    return normaliseFingerprint([...values][0]);
  } catch {
    throw new PeerbeamError('bad_message', "The other device's DTLS fingerprint is malformed.");
  }
}
