// kdf.js against tests/vectors/kdf.json (the documented constructions) and session.json (what
// crypto/kdf.py computes where a port could differ: transfer ids, float floor division).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesToHex, hexToBytes } from '../app/core/bytes.js';
import * as kdf from '../app/core/kdf.js';

const load = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), 'utf8'));
const V = load('kdf.json');
const S = load('session.json');
const h = hexToBytes;

for (const c of V.derive_key) {
  test(`deriveKey "${c.purpose}" (${c.length} bytes)`, () => {
    assert.equal(bytesToHex(kdf.deriveKey(h(c.secret), c.purpose, c.length, h(c.context))), c.output);
  });
}

test('named derivations match the vectors', () => {
  for (const c of V.pairing_psk) assert.equal(bytesToHex(kdf.pairingPsk(h(c.qr_secret))), c.psk);
  for (const c of V.pair_secret) assert.equal(bytesToHex(kdf.pairSecret(h(c.chaining_key))), c.pair_secret);
  for (const c of V.reconnect_psk) assert.equal(bytesToHex(kdf.reconnectPsk(h(c.pair_secret))), c.psk);
  for (const c of V.rendezvous_id) assert.equal(bytesToHex(kdf.rendezvousId(h(c.pair_secret), c.day)), c.rid);
  for (const c of V.lan_tag) assert.equal(bytesToHex(kdf.lanTag(h(c.pair_secret), c.epoch)), c.tag);
  for (const c of V.comparison_code) assert.equal(kdf.comparisonCode(h(c.handshake_hash)), c.code);
});

test('day and epoch numbers match Python, including where Math.floor(a / b) would not', () => {
  for (const c of [...V.day_of, ...S.day_of]) assert.equal(kdf.dayOf(c.now), c.day, `dayOf(${c.now})`);
  for (const c of [...V.lan_epoch_of, ...S.lan_epoch_of]) {
    assert.equal(kdf.lanEpochOf(c.now), c.epoch, `lanEpochOf(${c.now})`);
  }
  // The vectors do hold a case the naive formula gets wrong, so the test above can fail.
  assert.ok(S.lan_epoch_of.some((c) => Math.floor(c.now / kdf.LAN_EPOCH_PERIOD) !== c.epoch));
});

test('transfer ids match crypto/kdf.py', () => {
  for (const c of S.transfer_id) {
    assert.equal(bytesToHex(kdf.transferId(h(c.pair_secret), c.sha256, c.size, c.name)), c.id);
  }
});

test('purposes separate keys; the NUL keeps label and context apart', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
  const derived = [kdf.pairingPsk(secret), kdf.pairSecret(secret), kdf.reconnectPsk(secret),
    kdf.rendezvousId(secret, 0), kdf.deriveKey(secret, 'dtls binding')].map(bytesToHex);
  assert.equal(new Set(derived).size, 5);
  assert.notEqual(bytesToHex(kdf.deriveKey(secret, 'ab', 32, new Uint8Array([0x63]))),
    bytesToHex(kdf.deriveKey(secret, 'abc')));
});

test('misuse is a local error, not a PeerbeamError', () => {
  const calls = [
    () => kdf.deriveKey(new Uint8Array(0), 'x'),
    () => kdf.deriveKey(new Uint8Array([1]), ''),
    () => kdf.deriveKey(new Uint8Array([1]), 'a\x00b'),
    () => kdf.deriveKey(new Uint8Array([1]), 'é'),
    () => kdf.pairingPsk(new Uint8Array(31)),
    () => kdf.pairSecret(new Uint8Array(33)),
    () => kdf.rendezvousId(new Uint8Array(32), -1),
    () => kdf.lanTag(new Uint8Array(32), 2n ** 64n),
    () => kdf.lanTag(new Uint8Array(32), 1.5),
    () => kdf.comparisonCode(new Uint8Array(0)),
    () => kdf.dayOf(Number.NaN),
    () => kdf.transferId(new Uint8Array(32), 'zz', 1, 'a'),
    () => kdf.transferId(new Uint8Array(32), '00', 1, '\ud800'),
  ];
  for (const call of calls) assert.throws(call, (err) => err instanceof RangeError || err instanceof TypeError);
});
