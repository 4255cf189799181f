// A held (non-extractable WebCrypto) identity key runs the same KK reconnect as raw bytes: the
// JS initiator with a HeldKey against the recorded Python responder (session.json) produces
// byte-equal envelopes and the same handshake hash, and its key cannot be read out.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { bytesToHex, concatBytes, hexToBytes } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';
import { SecureSession, helloFor } from '../app/core/secure_session.js';
import { decodeSignal } from '../app/core/signals.js';
import { HeldKey } from '../app/store/held_key.js';

const S = JSON.parse(readFileSync(new URL('../../tests/vectors/session.json', import.meta.url), 'utf8'));
const h = hexToBytes;
// RFC 8410 §7: a PKCS#8 wrapper for a raw X25519 private key.
const PKCS8_PREFIX = h('302e020100300506032b656e04220420');

/** The vector's private key, imported the way a held key lives: non-extractable. */
async function heldFrom(privateHex, publicHex) {
  const key = await crypto.subtle.importKey('pkcs8', concatBytes(PKCS8_PREFIX, h(privateHex)), { name: 'X25519' },
    false, ['deriveBits']);
  return new HeldKey(key, h(publicHex));
}

function session(held, exchange) {
  const me = exchange.initiator;
  const hello = decodeSignal(new TextEncoder().encode(me.hello));
  return SecureSession.forReconnect({ role: 'initiator', hello: helloFor(hello.name, held, hello.device),
    identity: held, ephemeral: h(me.ephemeral), pairSecret: h(exchange.pair_secret_in),
    peerKey: h(exchange.responder.identity_public) });
}

test('KK with a held key is byte-equal to the recorded exchange', async () => {
  const exchange = S.reconnect;
  const held = await heldFrom(exchange.initiator.identity, exchange.initiator.identity_public);
  assert.equal(held.privateKey.extractable, false);
  await assert.rejects(crypto.subtle.exportKey('pkcs8', held.privateKey));
  const js = session(held, exchange);
  const [first, second] = exchange.handshake.map((m) => h(m.envelope));
  await held.prepare([h(exchange.responder.identity_public)]); // "ss" in the first message
  assert.equal(bytesToHex(js.start()), bytesToHex(first));
  await held.prepare([second.slice(1, 33)]); // "se" in the answer: the responder's ephemeral
  const { events: [done] } = js.receive(second);
  assert.equal(done.type, 'HandshakeCompleted');
  assert.equal(bytesToHex(done.handshakeHash), exchange.handshake_hash);
  assert.equal(bytesToHex(done.chainingKey), exchange.chaining_key);
  assert.equal(done.code, exchange.code);
});

test('an unprepared DH is a bug, a refused public key is interception', async () => {
  const held = await HeldKey.generate();
  assert.equal(held.privateKey.extractable, false);
  assert.equal(held.publicKey.length, 32);
  assert.throws(() => held.dh(new Uint8Array(32).fill(9)), /prepare\(\) was not called/);
  await held.prepare([new Uint8Array(32)]); // a low-order point: all-zero shared secret
  assert.throws(() => held.dh(new Uint8Array(32)), (err) => err instanceof PeerbeamError && err.code === 'interception');
  const exchange = S.reconnect;
  const js = session(held, exchange);
  assert.throws(() => js.start(), /prepare\(\) was not called/);
});
