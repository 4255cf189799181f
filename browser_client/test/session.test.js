// secure_session.js against SecureSession exchanges recorded from the Python peer
// (tests/vectors/session.json): the JS side plays either role against the other side's recorded
// envelopes and must produce byte-equal envelopes, the same handshake hash, chaining key, pair
// secret and code; then everything an attacker or a broken peer can send.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesToHex, hexToBytes } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';
import { pairSecret, pairingPsk } from '../app/core/kdf.js';
import { HandshakeState } from '../app/core/noise.js';
import { Kind, PAIR_PROLOGUE, SecureSession, abortEnvelope, helloFor } from '../app/core/secure_session.js';
import { decodeSignal, encodeSignal } from '../app/core/signals.js';
import { x25519 } from '../app/vendor/noble.js';

const S = JSON.parse(readFileSync(new URL('../../tests/vectors/session.json', import.meta.url), 'utf8'));
const h = hexToBytes;
const utf8 = (text) => new TextEncoder().encode(text);
const intercepted = (err) => err instanceof PeerbeamError && err.code === 'interception';
const OTHER = { initiator: 'responder', responder: 'initiator' };

/** A JS session for one recorded party; `change` overrides constructor options (attacks). */
function session(exchange, role, change = {}) {
  const me = exchange[role];
  const peer = exchange[OTHER[role]];
  const hello = decodeSignal(utf8(me.hello));
  const common = { role, hello: helloFor(hello.name, h(me.identity), hello.device), identity: h(me.identity),
    ephemeral: h(me.ephemeral) };
  if (exchange.pattern === 'NKpsk0') {
    return SecureSession.forPairing({ ...common, qrSecret: h(exchange.qr_secret),
      agentKey: role === 'initiator' ? h(peer.identity_public) : null, ...change });
  }
  return SecureSession.forReconnect({ ...common, pairSecret: h(exchange.pair_secret_in),
    peerKey: h(peer.identity_public), ...change });
}

/** Drive the handshake with the JS side in `role`; returns the session and its completion event. */
function handshake(exchange, role) {
  const js = session(exchange, role);
  const [first, second] = exchange.handshake.map((m) => h(m.envelope));
  let received;
  if (role === 'initiator') {
    assert.equal(bytesToHex(js.start()), bytesToHex(first));
    received = js.receive(second);
    assert.deepEqual(received.envelopes, []);
  } else {
    received = js.receive(first);
    assert.deepEqual(received.envelopes.map(bytesToHex), [bytesToHex(second)]);
  }
  const [done] = received.events;
  assert.equal(received.events.length, 1);
  assert.equal(done.type, 'HandshakeCompleted');
  return { js, done };
}

for (const name of ['pairing', 'reconnect']) {
  const exchange = S[name];
  for (const role of ['initiator', 'responder']) {
    test(`${name} (${exchange.pattern}): JS ${role} against the recorded Python ${OTHER[role]}`, () => {
      const { js, done } = handshake(exchange, role);
      assert.ok(js.established);
      assert.equal(bytesToHex(done.handshakeHash), exchange.handshake_hash);
      assert.equal(bytesToHex(done.chainingKey), exchange.chaining_key);
      assert.equal(bytesToHex(pairSecret(done.chainingKey)), exchange.pair_secret);
      assert.equal(done.code, exchange.code);
      assert.deepEqual(done.peer, decodeSignal(utf8(exchange[OTHER[role]].hello)));
      for (const sealed of exchange.sealed) {
        const signal = decodeSignal(utf8(sealed.plaintext));
        if (sealed.from === role) {
          assert.equal(bytesToHex(js.seal(signal)), sealed.envelope);
        } else {
          assert.deepEqual(js.receive(h(sealed.envelope)),
            { envelopes: [], events: [{ type: 'SignalReceived', signal }] });
        }
      }
    });
  }
}

test('the reconnect uses the pair secret the pairing produced', () => {
  assert.equal(S.reconnect.pair_secret_in, S.pairing.pair_secret);
});

test('a flipped bit anywhere in the first handshake envelope is interception, and the session stays dead', () => {
  const first = h(S.pairing.handshake[0].envelope);
  for (let position = 0; position < first.length; position++) {
    const agent = session(S.pairing, 'responder');
    const tampered = first.slice();
    tampered[position] ^= 0x01;
    assert.throws(() => agent.receive(tampered), intercepted, `byte ${position}`);
    assert.throws(() => agent.receive(first), intercepted);
  }
});

test('a tampered, replayed or misplaced transport envelope is interception', () => {
  const fromAgent = S.pairing.sealed.filter((s) => s.from === 'responder').map((s) => h(s.envelope));
  let { js } = handshake(S.pairing, 'initiator');
  const tampered = fromAgent[0].slice();
  tampered[5] ^= 0x80;
  assert.throws(() => js.receive(tampered), intercepted);
  assert.throws(() => js.receive(fromAgent[0]), /already aborted/);
  assert.throws(() => js.seal({ t: 'pair.accept' }), /not established/);
  ({ js } = handshake(S.pairing, 'initiator'));
  js.receive(fromAgent[0]);
  assert.throws(() => js.receive(fromAgent[0]), intercepted); // the same nonce twice
  ({ js } = handshake(S.pairing, 'initiator'));
  assert.throws(() => js.receive(fromAgent[1]), intercepted); // out of order
  ({ js } = handshake(S.pairing, 'initiator'));
  assert.throws(() => js.receive(h(S.pairing.handshake[1].envelope)), intercepted); // a handshake again
});

test('a wrong QR secret is interception', () => {
  const agent = session(S.pairing, 'responder', { qrSecret: new Uint8Array(32) });
  assert.throws(() => agent.receive(h(S.pairing.handshake[0].envelope)), intercepted);
  const phone = session(S.pairing, 'initiator', { qrSecret: new Uint8Array(32) });
  phone.start();
  assert.throws(() => phone.receive(h(S.pairing.handshake[1].envelope)), intercepted);
});

test('a QR naming another agent key is interception', () => {
  const phone = session(S.pairing, 'initiator', { agentKey: x25519.getPublicKey(new Uint8Array(32).fill(7)) });
  assert.notEqual(bytesToHex(phone.start()), S.pairing.handshake[0].envelope);
  assert.throws(() => phone.receive(h(S.pairing.handshake[1].envelope)), intercepted);
});

test('a Hello announcing another identity than the Noise key is interception', () => {
  // The Noise handshake itself succeeds (the agent holds its static key), but the identity in
  // its Hello is not the key the QR named: someone stands in between.
  const agentId = h(S.pairing.responder.identity);
  const liar = session(S.pairing, 'responder', { hello: helloFor('PC', new Uint8Array(32).fill(3), 'pc') });
  const phone = session(S.pairing, 'initiator');
  const { envelopes: [reply] } = liar.receive(phone.start());
  assert.throws(() => phone.receive(reply), intercepted);
  // The same for a reconnect, where the responder checks the initiator's Hello.
  const phoneLiar = session(S.reconnect, 'initiator', { hello: helloFor('P', agentId, 'phone') });
  assert.throws(() => session(S.reconnect, 'responder').receive(phoneLiar.start()), intercepted);
});

test('a handshake payload that is not a Hello is interception', () => {
  const hs = new HandshakeState('NKpsk0', { initiator: true, prologue: PAIR_PROLOGUE,
    psk: pairingPsk(h(S.pairing.qr_secret)), rs: h(S.pairing.responder.identity_public) });
  const envelope = new Uint8Array([Kind.HANDSHAKE, ...hs.writeMessage(encodeSignal({ t: 'bye' }))]);
  assert.throws(() => session(S.pairing, 'responder').receive(envelope), intercepted);
});

test('KK: a wrong peer key or a wrong pair secret on either side is interception', () => {
  const stranger = x25519.getPublicKey(new Uint8Array(32).fill(9));
  const [first, second] = S.reconnect.handshake.map((m) => h(m.envelope));
  assert.throws(() => session(S.reconnect, 'responder', { peerKey: stranger }).receive(first), intercepted);
  const forgetful = session(S.reconnect, 'responder', { pairSecret: new Uint8Array(32) });
  assert.throws(() => forgetful.receive(first), intercepted);
  for (const change of [{ peerKey: stranger }, { pairSecret: new Uint8Array(32) }]) {
    const phone = session(S.reconnect, 'initiator', change);
    phone.start();
    assert.throws(() => phone.receive(second), intercepted);
  }
});

test('a pairing message cannot be replayed into a reconnect, nor the other way round', () => {
  assert.throws(() => session(S.reconnect, 'responder').receive(h(S.pairing.handshake[0].envelope)), intercepted);
  assert.throws(() => session(S.pairing, 'responder').receive(h(S.reconnect.handshake[0].envelope)), intercepted);
});

test('empty, unknown-kind and early transport envelopes are interception', () => {
  const early = new Uint8Array(41).fill(120);
  early[0] = Kind.TRANSPORT;
  for (const junk of [new Uint8Array(0), new Uint8Array([9, 1, 2]), early]) {
    assert.throws(() => session(S.pairing, 'responder').receive(junk), intercepted);
  }
  // The initiator reads nothing before it has spoken.
  assert.throws(() => session(S.pairing, 'initiator').receive(h(S.pairing.handshake[1].envelope)), intercepted);
});

test('abort envelopes: the same bytes as Python sends, the same reason as Python reads', () => {
  for (const c of S.aborts.sent) assert.equal(bytesToHex(abortEnvelope(c.reason)), c.envelope);
  for (const c of S.aborts.received) {
    const agent = session(S.pairing, 'responder');
    assert.deepEqual(agent.receive(h(c.envelope)),
      { envelopes: [], events: [{ type: 'PeerAborted', reason: c.reason }] });
    assert.throws(() => agent.receive(h(S.pairing.handshake[0].envelope)), /already aborted/);
  }
});

test('two JS sessions with random ephemeral keys pair, then reconnect with the pair secret', () => {
  const [agentId, phoneId] = [x25519.utils.randomSecretKey(), x25519.utils.randomSecretKey()];
  const qrSecret = crypto.getRandomValues(new Uint8Array(32));
  const agent = SecureSession.forPairing({ role: 'responder', hello: helloFor('PC', agentId, 'pc'), identity: agentId,
    qrSecret, agentKey: null });
  const phone = SecureSession.forPairing({ role: 'initiator', hello: helloFor('Phone', phoneId, 'phone'),
    identity: phoneId, qrSecret, agentKey: x25519.getPublicKey(agentId) });
  const { envelopes: [reply], events: [doneAgent] } = agent.receive(phone.start());
  const { events: [donePhone] } = phone.receive(reply);
  assert.equal(donePhone.code, doneAgent.code);
  assert.deepEqual(doneAgent.peer.identity_key, x25519.getPublicKey(phoneId));
  const secret = pairSecret(donePhone.chainingKey);
  assert.deepEqual(secret, pairSecret(doneAgent.chainingKey));
  const again = SecureSession.forReconnect({ role: 'responder', hello: helloFor('PC', agentId, 'pc'), identity: agentId,
    pairSecret: secret, peerKey: x25519.getPublicKey(phoneId) });
  const phoneAgain = SecureSession.forReconnect({ role: 'initiator', hello: helloFor('Phone', phoneId, 'phone'),
    identity: phoneId, pairSecret: secret, peerKey: x25519.getPublicKey(agentId) });
  const { envelopes: [reply2] } = again.receive(phoneAgain.start());
  phoneAgain.receive(reply2);
  const offer = { t: 'rtc.sdp', type: 'offer', sdp: 'v=0\r\n', v: 1 };
  assert.deepEqual(again.receive(phoneAgain.seal(offer)).events, [{ type: 'SignalReceived', signal: offer }]);
  assert.notEqual(bytesToHex(doneAgent.handshakeHash), S.pairing.handshake_hash);
});

test('local misuse is a plain error', () => {
  assert.throws(() => session(S.pairing, 'responder').start(), /only the initiator/);
  assert.throws(() => session(S.pairing, 'initiator').seal({ t: 'pair.accept' }), /not established/);
  assert.throws(() => session(S.pairing, 'initiator', { role: 'observer' }), RangeError);
  assert.throws(() => session(S.pairing, 'initiator', { hello: { t: 'bye' } }), TypeError);
});
