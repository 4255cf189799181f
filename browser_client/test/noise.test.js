// noise.js against the published cacophony vectors (tests/vectors/noise.json), both sides of
// every message, and what an attacker can try. Interoperability with the Python side is in
// session.test.js (recorded SecureSession exchanges).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesToHex, hexToBytes } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';
import { HandshakeState, MAX_MESSAGE_LEN } from '../app/core/noise.js';
import { x25519 } from '../app/vendor/noble.js';

const V = JSON.parse(readFileSync(new URL('../../tests/vectors/noise.json', import.meta.url), 'utf8'));
const h = hexToBytes;
const PROLOGUE = new TextEncoder().encode('peerbeam/v1 test');
const PSK = Uint8Array.from({ length: 32 }, (_, i) => i);
const PATTERNS = ['NKpsk0', 'KKpsk0'];
const intercepted = (err) => err instanceof PeerbeamError && err.code === 'interception';
const newKey = () => x25519.utils.randomSecretKey();
const pub = (k) => x25519.getPublicKey(k);

test('the vector file holds exactly our two protocols', () => {
  assert.deepEqual(V.vectors.map((v) => v.protocol_name).sort(),
    ['Noise_KKpsk0_25519_AESGCM_SHA256', 'Noise_NKpsk0_25519_AESGCM_SHA256']);
});

for (const v of V.vectors) {
  test(`published vector ${v.protocol_name}`, () => {
    const pattern = v.protocol_name.split('_')[1];
    assert.equal(bytesToHex(pub(h(v.resp_static))), v.init_remote_static);
    const initiator = new HandshakeState(pattern, {
      initiator: true, prologue: h(v.init_prologue), psk: h(v.init_psk),
      s: v.init_static ? h(v.init_static) : undefined, rs: h(v.init_remote_static), e: h(v.init_ephemeral),
    });
    const responder = new HandshakeState(pattern, {
      initiator: false, prologue: h(v.resp_prologue), psk: h(v.resp_psk), s: h(v.resp_static),
      rs: v.resp_remote_static ? h(v.resp_remote_static) : undefined, e: h(v.resp_ephemeral),
    });
    const [first, second, ...transport] = v.messages;
    const m1 = initiator.writeMessage(h(first.payload));
    assert.equal(bytesToHex(m1), first.ciphertext);
    // This cacophony revision records h after the first message (see noise.json "notes").
    assert.equal(bytesToHex(initiator.handshakeHash), v.handshake_hash);
    assert.equal(bytesToHex(responder.readMessage(m1)), first.payload);
    const m2 = responder.writeMessage(h(second.payload));
    assert.equal(bytesToHex(m2), second.ciphertext);
    assert.equal(bytesToHex(initiator.readMessage(m2)), second.payload);
    assert.ok(initiator.finished && responder.finished);
    assert.deepEqual(initiator.handshakeHash, responder.handshakeHash);
    const [ti, tr] = [initiator.transport(), responder.transport()];
    transport.forEach((step, index) => {
      const [sender, receiver] = index % 2 === 0 ? [ti, tr] : [tr, ti];
      const ciphertext = sender.encrypt(h(step.payload));
      assert.equal(bytesToHex(ciphertext), step.ciphertext);
      assert.equal(bytesToHex(receiver.decrypt(ciphertext)), step.payload);
    });
  });
}

/** A fresh initiator/responder pair with random keys. */
function pair(pattern, { pskI = PSK, pskR = PSK, prologueR = PROLOGUE } = {}) {
  const iS = pattern === 'KKpsk0' ? newKey() : undefined;
  const rS = newKey();
  return [
    new HandshakeState(pattern, { initiator: true, prologue: PROLOGUE, psk: pskI, s: iS, rs: pub(rS) }),
    new HandshakeState(pattern, { initiator: false, prologue: prologueR, psk: pskR, s: rS, rs: iS && pub(iS) }),
  ];
}

function complete(pattern) {
  const [i, r] = pair(pattern);
  r.readMessage(i.writeMessage());
  i.readMessage(r.writeMessage());
  return [i.transport(), r.transport()];
}

for (const pattern of PATTERNS) {
  test(`${pattern}: both sides agree; fresh ephemerals give fresh keys`, () => {
    const [ti, tr] = complete(pattern);
    assert.deepEqual(ti.handshakeHash, tr.handshakeHash);
    assert.deepEqual(ti.chainingKey, tr.chainingKey);
    const ad = new Uint8Array([7]);
    assert.deepEqual(tr.decrypt(ti.encrypt(new Uint8Array([1]), ad), ad), new Uint8Array([1]));
    assert.deepEqual(ti.decrypt(tr.encrypt(new Uint8Array([2]))), new Uint8Array([2]));
    const [again] = complete(pattern);
    assert.notDeepEqual(again.chainingKey, ti.chainingKey);
  });

  test(`${pattern}: a flipped bit anywhere in either handshake message is fatal`, () => {
    const payload = new TextEncoder().encode('payload');
    for (const which of [0, 1]) {
      for (let position = 0; position < 32 + payload.length + 16; position++) {
        const [i, r] = pair(pattern);
        let message = i.writeMessage(payload);
        let reader = r;
        if (which === 1) {
          r.readMessage(message);
          message = r.writeMessage(payload);
          reader = i;
        }
        message[position] ^= 0x01;
        assert.throws(() => reader.readMessage(message), intercepted, `message ${which} byte ${position}`);
      }
    }
  });

  test(`${pattern}: wrong psk, other prologue, swapped ephemeral`, () => {
    let [i, r] = pair(pattern, { pskR: new Uint8Array(32) });
    assert.throws(() => r.readMessage(i.writeMessage()), intercepted);
    [i, r] = pair(pattern, { prologueR: new Uint8Array([1]) });
    assert.throws(() => r.readMessage(i.writeMessage()), intercepted);
    [i, r] = pair(pattern);
    const forged = i.writeMessage();
    forged.set(pub(newKey()), 0); // a relay substituting its own ephemeral key
    assert.throws(() => r.readMessage(forged), intercepted);
    [i, r] = pair(pattern);
    r.readMessage(i.writeMessage());
    const reply = r.writeMessage();
    reply.set(pub(newKey()), 0);
    assert.throws(() => i.readMessage(reply), intercepted);
  });

  test(`${pattern}: short and oversized handshake messages`, () => {
    for (const length of [...Array(48).keys(), MAX_MESSAGE_LEN + 1]) {
      const [, r] = pair(pattern);
      assert.throws(() => r.readMessage(new Uint8Array(length)), intercepted, `length ${length}`);
    }
  });

  test(`${pattern}: out of turn`, () => {
    let [i, r] = pair(pattern);
    assert.throws(() => i.readMessage(new Uint8Array(48)), intercepted); // the initiator speaks first
    [i, r] = pair(pattern);
    assert.throws(() => r.writeMessage(), /turn/);
    const message = i.writeMessage();
    assert.throws(() => i.writeMessage(), /turn/);
    r.readMessage(message);
    assert.throws(() => r.readMessage(message), intercepted);
    assert.throws(() => r.transport(), /not finished/);
  });
}

test('NK: a swapped agent key (a server replacing pk_agent in the QR view) fails', () => {
  const agent = newKey();
  const phone = new HandshakeState('NKpsk0', { initiator: true, prologue: PROLOGUE, psk: PSK, rs: pub(newKey()) });
  const agentSide = new HandshakeState('NKpsk0', { initiator: false, prologue: PROLOGUE, psk: PSK, s: agent });
  assert.throws(() => agentSide.readMessage(phone.writeMessage()), intercepted);
});

test('KK: a wrong remote static on either side, or the psk without the static key, fails', () => {
  for (const side of ['initiator', 'responder']) {
    const [iS, rS, stranger] = [newKey(), newKey(), newKey()];
    const i = new HandshakeState('KKpsk0', { initiator: true, prologue: PROLOGUE, psk: PSK, s: iS,
      rs: pub(side === 'initiator' ? stranger : rS) });
    const r = new HandshakeState('KKpsk0', { initiator: false, prologue: PROLOGUE, psk: PSK, s: rS,
      rs: pub(side === 'responder' ? stranger : iS) });
    assert.throws(() => r.readMessage(i.writeMessage()), intercepted, side);
  }
  const [iS, rS, impostor] = [newKey(), newKey(), newKey()];
  const fake = new HandshakeState('KKpsk0',
    { initiator: true, prologue: PROLOGUE, psk: PSK, s: impostor, rs: pub(rS) });
  const r = new HandshakeState('KKpsk0', { initiator: false, prologue: PROLOGUE, psk: PSK, s: rS, rs: pub(iS) });
  assert.throws(() => r.readMessage(fake.writeMessage()), intercepted);
});

test('a low-order ephemeral key is refused', () => {
  const r = new HandshakeState('NKpsk0', { initiator: false, prologue: PROLOGUE, psk: PSK, s: newKey() });
  assert.throws(() => r.readMessage(new Uint8Array(48)), intercepted);
});

test('a failed handshake stays dead', () => {
  const [i, r] = pair('KKpsk0');
  const good = i.writeMessage();
  const bad = good.slice();
  bad[bad.length - 1] ^= 1;
  assert.throws(() => r.readMessage(bad), intercepted);
  assert.throws(() => r.readMessage(good), intercepted);
});

test('transport: tampering, replay, reordering and a wrong ad are fatal', () => {
  const one = new Uint8Array([1]);
  let [ti, tr] = complete('NKpsk0');
  const first = ti.encrypt(one);
  const second = ti.encrypt(one);
  assert.deepEqual(tr.decrypt(first), one);
  assert.throws(() => tr.decrypt(first), intercepted); // replay
  [ti, tr] = complete('NKpsk0');
  const a = ti.encrypt(one);
  const b = ti.encrypt(one);
  assert.throws(() => tr.decrypt(b), intercepted); // reordered
  assert.throws(() => tr.decrypt(a), intercepted); // and now broken for good
  [ti, tr] = complete('NKpsk0');
  const flipped = ti.encrypt(one);
  flipped[0] ^= 1;
  assert.throws(() => tr.decrypt(flipped), intercepted);
  [ti, tr] = complete('NKpsk0');
  assert.throws(() => tr.decrypt(ti.encrypt(one, new Uint8Array([1])), new Uint8Array([2])), intercepted);
  [ti, tr] = complete('NKpsk0');
  assert.throws(() => tr.decrypt(second.slice(0, 15)), intercepted);
});

test('message size limits (Noise §3)', () => {
  const [ti, tr] = complete('NKpsk0');
  const biggest = new Uint8Array(MAX_MESSAGE_LEN - 16);
  assert.equal(tr.decrypt(ti.encrypt(biggest)).length, biggest.length);
  assert.throws(() => ti.encrypt(new Uint8Array(MAX_MESSAGE_LEN - 15)), RangeError);
  assert.throws(() => tr.decrypt(new Uint8Array(MAX_MESSAGE_LEN + 1)), intercepted);
  const [i, r] = pair('NKpsk0');
  assert.throws(() => i.writeMessage(new Uint8Array(MAX_MESSAGE_LEN - 48 + 1)), RangeError);
  // The refused write changed nothing: the largest allowed message still goes through.
  const message = i.writeMessage(new Uint8Array(MAX_MESSAGE_LEN - 48));
  assert.equal(message.length, MAX_MESSAGE_LEN);
  assert.equal(r.readMessage(message).length, MAX_MESSAGE_LEN - 48);
});

test('the transport is split once; the remote static is reported', () => {
  const [i, r] = pair('NKpsk0');
  r.readMessage(i.writeMessage());
  i.readMessage(r.writeMessage());
  assert.equal(i.transport(), i.transport()); // a second Split() would reuse nonces
  assert.equal(r.transport().remoteStatic, null);
  assert.equal(i.transport().remoteStatic.length, 32);
});

test('missing or malformed keys are local errors', () => {
  const cases = [
    ['NKpsk0', { initiator: true, psk: new Uint8Array(31), rs: new Uint8Array(32) }],
    ['NKpsk0', { initiator: true, psk: PSK }],
    ['NKpsk0', { initiator: false, psk: PSK }],
    ['KKpsk0', { initiator: true, psk: PSK, rs: new Uint8Array(32) }],
    ['KKpsk0', { initiator: false, psk: PSK, s: newKey() }],
    ['KKpsk0', { initiator: false, psk: PSK, s: newKey(), rs: new Uint8Array(31) }],
    ['NKpsk0', { initiator: false, psk: PSK, s: new Uint8Array(31) }],
    ['XXpsk3', { initiator: true, psk: PSK }],
  ];
  for (const [pattern, options] of cases) {
    assert.throws(() => new HandshakeState(pattern, { prologue: new Uint8Array(0), ...options }), RangeError);
  }
});
