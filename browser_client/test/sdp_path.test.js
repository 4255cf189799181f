// sdp.js (one sha-256 fingerprint each way, as peer_agent/rtc.py) and path.js (LAN / direct /
// relay from a getStats() report, with Python's notion of a local address).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PeerbeamError } from '../app/core/errors.js';
import { classify, describePath, gatheredTypes, isLocalAddress } from '../app/core/path.js';
import { keepSha256Fingerprint, remoteFingerprint } from '../app/core/sdp.js';

const FP256 = Array(32).fill('AB').join(':');
const FP384 = Array(48).fill('CD').join(':');
const SDP = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n' +
  `a=fingerprint:sha-256 ${FP256}\r\na=fingerprint:sha-384 ${FP384}\r\na=setup:actpass\r\n`;

test('our SDP keeps exactly its sha-256 fingerprint, and no empty line', () => {
  const { sdp, fingerprint } = keepSha256Fingerprint(SDP);
  assert.equal(fingerprint, FP256);
  assert.equal(sdp, SDP.replace(`a=fingerprint:sha-384 ${FP384}\r\n`, ''));
  assert.equal(remoteFingerprint(sdp), FP256);
  // aiortc's answer after peer_agent/rtc.py stripped its other fingerprints (old versions left a
  // bare "\n" behind): still read right.
  assert.equal(remoteFingerprint(`v=0\r\na=fingerprint:sha-256 ${FP256.toLowerCase()}\r\n\na=setup:active\r\n`), FP256);
  assert.throws(() => keepSha256Fingerprint('v=0\r\n'), Error);
});

test('a remote SDP with anything but one sha-256 fingerprint is refused', () => {
  for (const sdp of [SDP, `a=fingerprint:sha-1 ${Array(20).fill('AB').join(':')}\r\n`,
    `a=fingerprint:sha-256 ${FP256}\r\na=fingerprint:sha-256 ${Array(32).fill('01').join(':')}\r\n`,
    'v=0\r\n', 'a=fingerprint:sha-256 ZZ:ZZ\r\n']) {
    assert.throws(() => remoteFingerprint(sdp), (e) => e instanceof PeerbeamError && e.code === 'bad_message');
  }
  // Two media sections, the same certificate: one fingerprint.
  assert.equal(remoteFingerprint(`a=fingerprint:sha-256 ${FP256}\r\na=fingerprint:sha-256 ${FP256}\r\n`), FP256);
});

test('local addresses as Python ipaddress is_private sees them, and mDNS names', () => {
  for (const host of ['10.1.2.3', '192.168.0.9', '172.31.255.255', '169.254.1.1', '198.51.100.1', '203.0.113.9',
    '192.0.2.2', 'fe80::1', 'fe80::1%eth0', 'fd00::5', '::1', '[fe80::2]', '::ffff:192.168.1.1',
    '2001:db8::1', 'a1b2c3d4-e5f6.local']) {
    assert.ok(isLocalAddress(host), host);
  }
  for (const host of ['8.8.8.8', '172.32.0.1', '100.64.0.1', '2a00:1450::1', 'example.com', '1.2.3', '1.2.3.04', ':::']) {
    assert.ok(!isLocalAddress(host), host);
  }
});

test('path classification is peer_agent/path.py classify', () => {
  const cases = [
    ['host', 'host', '198.51.100.1', 'lan'], ['host', 'prflx', '192.168.1.5', 'lan'],
    ['host', 'host', '8.8.8.8', 'direct'], ['srflx', 'srflx', '203.0.113.5', 'direct'],
    ['host', 'srflx', '192.168.1.5', 'direct'], ['relay', 'host', '10.0.0.1', 'relay'],
    ['host', 'relay', '10.0.0.1', 'relay'], ['prflx', 'host', '10.0.0.1', 'direct'],
  ];
  for (const [local, remote, host, kind] of cases) assert.equal(classify(local, remote, host), kind, `${local}/${remote}/${host}`);
});

test('the selected pair of a getStats report, with relay protocol and RTT', () => {
  const report = [
    { id: 'T', type: 'transport', selectedCandidatePairId: 'P' },
    { id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', currentRoundTripTime: 0.0042 },
    { id: 'L', type: 'local-candidate', candidateType: 'relay', protocol: 'udp', relayProtocol: 'tls' },
    { id: 'R', type: 'remote-candidate', candidateType: 'host', address: '198.51.100.1' },
    { id: 'L2', type: 'local-candidate', candidateType: 'host', protocol: 'udp' },
  ];
  assert.deepEqual(describePath(report),
    { kind: 'relay', transport: 'tls', localType: 'relay', remoteType: 'host', rttMs: 4.2 });
  assert.deepEqual([...gatheredTypes(report)].sort(), ['host', 'relay']);
  assert.equal(describePath(report.filter((s) => s.type !== 'transport')), null);
  const lan = [{ id: 'P', type: 'candidate-pair', selected: true, state: 'succeeded', localCandidateId: 'L', remoteCandidateId: 'R' },
    { id: 'L', type: 'local-candidate', candidateType: 'host', protocol: 'udp' },
    { id: 'R', type: 'remote-candidate', candidateType: 'prflx', address: '198.51.100.1' }];
  assert.deepEqual(describePath(lan), { kind: 'lan', transport: 'udp', localType: 'host', remoteType: 'prflx', rttMs: null });
});
