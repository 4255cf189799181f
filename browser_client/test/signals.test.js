// signals.js: the same schema as msgspec (session.json "signal_schema"), the same bytes as
// msgspec for every recorded plaintext, and the refusals msgspec makes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { PeerbeamError } from '../app/core/errors.js';
import { SIGNAL_SCHEMA, decodeSignal, encodeSignal } from '../app/core/signals.js';

const S = JSON.parse(readFileSync(new URL('../../tests/vectors/session.json', import.meta.url), 'utf8'));
const utf8 = (text) => new TextEncoder().encode(text);
const text = (bytes) => new TextDecoder().decode(bytes);
const KEY64 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const refused = (code) => (err) => err instanceof PeerbeamError && err.code === code;

test('the PeerSignal table is the one msgspec describes', () => {
  assert.deepEqual(JSON.parse(JSON.stringify(SIGNAL_SCHEMA)), S.signal_schema);
});

test('every recorded plaintext decodes and encodes back to the same bytes', () => {
  const plaintexts = [];
  for (const exchange of [S.pairing, S.reconnect]) {
    plaintexts.push(exchange.initiator.hello, exchange.responder.hello, ...exchange.sealed.map((s) => s.plaintext));
  }
  assert.ok(plaintexts.some((p) => /[^\x00-\x7f]/.test(p)) && plaintexts.some((p) => p.includes('\\r\\n')));
  for (const plaintext of plaintexts) assert.equal(text(encodeSignal(decodeSignal(utf8(plaintext)))), plaintext);
});

test('encoding puts the tag first and v last, writes defaults, base64 with padding', () => {
  assert.equal(text(encodeSignal({ t: 'bye' })), '{"t":"bye","message":"","v":1}');
  assert.equal(text(encodeSignal({ t: 'rtc.ice', candidate: 'x' })),
    '{"t":"rtc.ice","candidate":"x","sdp_mid":null,"sdp_mline_index":null,"v":1}');
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(text(encodeSignal({ t: 'hello', name: 'A', identity_key: key, device: 'pc' })),
    `{"t":"hello","name":"A","identity_key":"${KEY64}","device":"pc","v":1}`);
  // msgspec's escapes: short forms for \b \t \n \f \r, \u00XX for other controls, nothing else.
  assert.equal(text(encodeSignal({ t: 'bye', message: '\x00\x08\t\n\x0b\x0c\r\x1f"\\/\x7f\u2028é' })),
    '{"t":"bye","message":"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\/\x7f\u2028é","v":1}');
});

test('decoding fills defaults, accepts any key order, and returns frozen objects with bytes', () => {
  const hello = decodeSignal(utf8(`{"device":"cli","v":1,"identity_key":"${KEY64}","name":"n","t":"hello"}`));
  assert.ok(Object.isFrozen(hello) && hello.identity_key instanceof Uint8Array && hello.identity_key[31] === 31);
  assert.deepEqual(decodeSignal(utf8('{"t":"rtc.ice","candidate":""}')),
    { t: 'rtc.ice', candidate: '', sdp_mid: null, sdp_mline_index: null, v: 1 });
  // Lengths count code points, as Python's len() does: 64 emoji are a valid name.
  const name = '\u{1F600}'.repeat(64);
  assert.equal(decodeSignal(utf8(`{"t":"hello","name":"${name}","identity_key":"${KEY64}","device":"pc"}`)).name, name);
});

test('refusals carry the codes msgspec and schema.py give', () => {
  const bad = {
    bad_json: ['', '{', '{"t":"bye"', '\ufeff{"t":"bye"}', 'nul', '{"t":"bye"} x'],
    bad_message: ['[]', 'null', '1', '{}', '{"t":"nope"}', '{"t":1}', '{"t":"bye","x":1}', '{"t":"bye","v":2}',
      '{"t":"bye","message":null}', '{"t":"pair.reject"}', '{"t":"rtc.sdp","type":"pranswer","sdp":""}',
      '{"t":"rtc.ice","candidate":"x","sdp_mline_index":true}', '{"t":"rtc.ice","candidate":"x","sdp_mline_index":1.5}',
      `{"t":"hello","name":"","identity_key":"${KEY64}","device":"pc"}`,
      `{"t":"hello","name":"${'a'.repeat(65)}","identity_key":"${KEY64}","device":"pc"}`,
      '{"t":"hello","name":"a","identity_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","device":"pc"}',
      '{"t":"hello","name":"a","identity_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==","device":"pc"}',
      `{"t":"hello","name":"a","identity_key":"${KEY64.replace('A', '-')}","device":"pc"}`,
      `{"t":"hello","name":"a","identity_key":"${KEY64}","device":"tv"}`,
      `{"t":"bye","message":"${'a'.repeat(1025)}"}`, '{"t":"bye","__proto__":{}}'],
  };
  for (const [code, inputs] of Object.entries(bad)) {
    for (const input of inputs) assert.throws(() => decodeSignal(utf8(input)), refused(code), input);
  }
  assert.throws(() => decodeSignal(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d])), refused('bad_json'));
  const oversized = utf8(`{"t":"bye","message":"${' '.repeat(64 * 1024)}"}`);
  assert.throws(() => decodeSignal(oversized), refused('frame_too_large'));
});

test('encoding refuses what the peer would refuse, as a local error', () => {
  const key = new Uint8Array(32);
  for (const signal of [null, {}, { t: 'nope' }, { t: 'bye', x: 1 }, { t: 'pair.reject' },
    { t: 'hello', name: 'a', identity_key: new Uint8Array(31), device: 'pc' },
    { t: 'hello', name: 'a', identity_key: key, device: 'tv' },
    { t: 'rtc.ice', candidate: 'x', sdp_mline_index: 2 ** 53 }, { t: 'bye', message: '\ud800' }]) {
    assert.throws(() => encodeSignal(signal), TypeError, JSON.stringify(signal));
  }
});
