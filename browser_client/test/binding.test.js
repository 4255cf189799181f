// binding.js against tests/vectors/binding.json, Python's fingerprint corner cases
// (session.json), and a relay that terminates DTLS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bindingKey, bindingMac, normaliseFingerprint, verifyBinding } from '../app/core/binding.js';
import { bytesToHex, hexToBytes } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';

const load = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), 'utf8'));
const V = load('binding.json');
const S = load('session.json');
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const HH = Uint8Array.from({ length: 32 }, (_, i) => 32 + i);
const fp = (byte) => `sha-256 ${Array(32).fill(byte.toString(16).padStart(2, '0')).join(':')}`;
const [PHONE_FP, AGENT_FP, RELAY_FP] = [fp(0x11), fp(0x22), fp(0x33)];
const intercepted = (err) => err instanceof PeerbeamError && err.code === 'interception';

test('MAC and binding key vectors', () => {
  for (const c of V.mac) {
    const mac = bindingMac(hexToBytes(c.key), c.role, hexToBytes(c.handshake_hash), c.local_fp, c.remote_fp);
    assert.equal(bytesToHex(mac), c.mac);
  }
  for (const c of V.binding_key) assert.equal(bytesToHex(bindingKey(hexToBytes(c.chaining_key))), c.key);
});

test('fingerprint spellings: the shared good and bad lists', () => {
  for (const c of V.normalise_good) assert.equal(normaliseFingerprint(c.input), c.output);
  for (const value of [...V.normalise_bad, 'A'.repeat(1000)]) {
    assert.throws(() => normaliseFingerprint(value), intercepted, JSON.stringify(value));
  }
});

test('fingerprint spellings where JavaScript and Python differ by default', () => {
  // Unicode whitespace, U+017F LONG S, full-width digits, the 200-character cap.
  for (const c of S.fingerprints) {
    if (c.output === null) assert.throws(() => normaliseFingerprint(c.input), intercepted, JSON.stringify(c.input));
    else assert.equal(normaliseFingerprint(c.input), c.output, JSON.stringify(c.input));
  }
});

test('the receiver verifies with the sender\'s role and view, in any spelling', () => {
  const mac = bindingMac(KEY, 'initiator', HH, PHONE_FP, AGENT_FP);
  verifyBinding(KEY, 'initiator', HH, PHONE_FP, AGENT_FP, mac);
  verifyBinding(KEY, 'initiator', HH, PHONE_FP.toUpperCase().replace('SHA-256 ', ''), AGENT_FP.toLowerCase(), mac);
  assert.throws(() => verifyBinding(KEY, 'initiator', HH, AGENT_FP, PHONE_FP, mac), intercepted);
});

test('a relay terminating DTLS is detected on both sides', () => {
  const phoneMac = bindingMac(KEY, 'initiator', HH, PHONE_FP, RELAY_FP);
  assert.throws(() => verifyBinding(KEY, 'initiator', HH, RELAY_FP, AGENT_FP, phoneMac), intercepted);
  const agentMac = bindingMac(KEY, 'responder', HH, AGENT_FP, RELAY_FP);
  assert.throws(() => verifyBinding(KEY, 'responder', HH, RELAY_FP, PHONE_FP, agentMac), intercepted);
});

test('role, hash, key and MAC length are all bound', () => {
  const mac = bindingMac(KEY, 'initiator', HH, PHONE_FP, AGENT_FP);
  assert.throws(() => verifyBinding(KEY, 'responder', HH, PHONE_FP, AGENT_FP, mac), intercepted);
  assert.throws(() => verifyBinding(KEY, 'initiator', new Uint8Array(32), PHONE_FP, AGENT_FP, mac), intercepted);
  assert.throws(() => verifyBinding(new Uint8Array(32), 'initiator', HH, PHONE_FP, AGENT_FP, mac), intercepted);
  assert.throws(() => verifyBinding(KEY, 'initiator', HH, PHONE_FP, AGENT_FP, mac.slice(0, 16)), intercepted);
  assert.throws(() => verifyBinding(KEY, 'initiator', HH, PHONE_FP, `sha-1 ${Array(20).fill('AB').join(':')}`, mac),
    intercepted);
  assert.throws(() => bindingMac(KEY, 'observer', HH, PHONE_FP, AGENT_FP), RangeError);
});
