// bytes.js against node's own Buffer codecs (an independent implementation), and the strictness
// the Python side has: one spelling per value on links, msgspec's leniency inside JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as bytes from '../app/core/bytes.js';

test('base64 spellings agree with Buffer for every length up to 70', () => {
  for (let n = 0; n <= 70; n++) {
    const data = crypto.getRandomValues(new Uint8Array(n));
    const url = Buffer.from(data).toString('base64url');
    const std = Buffer.from(data).toString('base64');
    assert.equal(bytes.b64urlEncode(data), url);
    assert.equal(bytes.base64Encode(data), std);
    assert.deepEqual(bytes.b64urlDecode(url, 100), data);
    assert.deepEqual(bytes.base64Decode(std), data);
    assert.equal(bytes.bytesToHex(data), Buffer.from(data).toString('hex'));
    assert.deepEqual(bytes.hexToBytes(Buffer.from(data).toString('hex').toUpperCase()), data);
  }
});

test('base64url on links: one spelling per value, length capped before decoding', () => {
  for (const bad of ['AA==', 'AA=', 'A', 'AAAAA', 'AA+/', 'AA A', 'AB', 'AAB']) {
    assert.equal(bytes.b64urlDecode(bad, 100), null, bad); // 'AB', 'AAB': stray low bits
  }
  assert.equal(bytes.b64urlDecode('AAAA', 3), null);
  assert.deepEqual(bytes.b64urlDecode('', 0), new Uint8Array(0));
});

test('standard base64 in JSON: padded, standard alphabet; stray bits accepted as msgspec does', () => {
  for (const bad of ['AA', 'AA=', 'AA-_', 'A===', '=AAA', 'AA=A', 'AAAA====']) {
    assert.equal(bytes.base64Decode(bad), null, bad);
  }
  assert.deepEqual(bytes.base64Decode('AB=='), new Uint8Array([0]));
});

test('integers, UTF-8, lengths, comparison', () => {
  assert.deepEqual(bytes.u64be(2n ** 64n - 1n), new Uint8Array(8).fill(255));
  assert.deepEqual(bytes.u64be(258), new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2]));
  for (const bad of [-1, 2n ** 64n, 0.5]) assert.throws(() => bytes.u64be(bad), RangeError);
  assert.throws(() => bytes.u16be(65536), RangeError);
  assert.equal(bytes.readU64be(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 1, 0]), 1), 256n);
  assert.throws(() => bytes.utf8Decode(new Uint8Array([0xc3])), TypeError);
  assert.equal(bytes.utf8Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), '\ufeffa'); // BOM kept
  assert.throws(() => bytes.utf8Encode('a\udc00'), TypeError);
  assert.equal(bytes.codePointLength('a\u{1F600}é'), 3);
  assert.ok(bytes.equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!bytes.equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!bytes.equalBytes(new Uint8Array([1]), new Uint8Array([1, 0])));
  assert.throws(() => bytes.hexToBytes('abc'), TypeError);
});
