// core/transfer.js and core/card.js: the phone's transfer machines against each other in
// memory (offer, accept, frames, progress, done; cancel from either side; damage), and the
// card assembler's checks of every thumbnail frame.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bytesToHex } from '../app/core/bytes.js';
import { CardAssembler } from '../app/core/card.js';
import { decodeChannel, encodeChannel } from '../app/core/channel.js';
import { decodeFrame, encodeFrame } from '../app/core/frames.js';
import { IncomingTransfer, OutgoingTransfer } from '../app/core/transfer.js';
import { sha256 } from '../app/vendor/noble.js';

const wire = (messages) => messages.map((m) => decodeChannel(encodeChannel(m))); // through the real codec

function pair(data, chunkSize = 1000) {
  const id = '0123456789abcdef';
  const out = new OutgoingTransfer({ id, name: 'f.bin', size: data.length, sha256: bytesToHex(sha256(data)), chunkSize });
  const [offer] = wire(out.popMessages());
  const inc = new IncomingTransfer(offer, 0);
  return { out, inc };
}

function pump(out, inc, data, now = 0, until = Infinity) {
  const received = [];
  let want;
  while ((want = out.nextRead()) !== null && out.sent < until) {
    const frame = decodeFrame(out.encodeChunk(data.subarray(want[0], want[0] + want[1])));
    for (const e of inc.receiveFrame(frame, now += 100)) if (e.type === 'chunk') received.push(e.data);
  }
  return received;
}

test('a file goes through, is verified, and both sides complete', () => {
  const data = Uint8Array.from({ length: 5500 }, (_, i) => i * 7);
  const { out, inc } = pair(data);
  inc.accept();
  for (const m of wire(inc.popMessages())) assert.deepEqual(out.receive(m, 0).map((e) => e.type), ['accepted']);
  const chunks = pump(out, inc, data);
  assert.equal(inc.state, 'verified');
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
  assert.deepEqual(inc.committed().map((e) => e.type), ['completed']);
  const events = wire(inc.popMessages()).flatMap((m) => out.receive(m, 0));
  assert.equal(events.at(-1).type, 'completed');
  assert.ok(events.some((e) => e.type === 'progress' && e.done === data.length));
});

test('a damaged file fails with hash_mismatch and the sender is told', () => {
  const data = new Uint8Array(3000).fill(1);
  const { out, inc } = pair(data);
  inc.accept();
  wire(inc.popMessages()).forEach((m) => out.receive(m, 0));
  pump(out, inc, data.map((b, i) => (i === 2000 ? 2 : b)));
  assert.equal(inc.state, 'failed');
  const failed = wire(inc.popMessages()).find((m) => m.t === 'transfer.failed');
  assert.equal(failed.code, 'hash_mismatch');
  assert.equal(out.receive(failed, 0)[0].type, 'failed');
});

test('cancel from either side mid-way ends both; late frames are ignored', () => {
  for (const side of ['sender', 'receiver']) {
    const data = new Uint8Array(10_000);
    const { out, inc } = pair(data);
    inc.accept();
    wire(inc.popMessages()).forEach((m) => out.receive(m, 0));
    pump(out, inc, data, 0, 4000);
    inc.popMessages(); // progress so far
    const [canceller, other] = side === 'sender' ? [out, inc] : [inc, out];
    assert.equal(canceller.cancel('stop')[0].by, 'local');
    const [cancel] = wire(canceller.popMessages());
    assert.equal(cancel.t, 'transfer.cancel');
    assert.deepEqual(other.receive(cancel, 0).map((e) => [e.type, e.by]), [['cancelled', 'peer']]);
    assert.equal(out.nextRead(), null);
    assert.deepEqual(inc.receiveFrame(decodeFrame(encodeFrame(inc.id, 4000, new Uint8Array(10))), 0), []);
  }
});

test('frames out of order or beyond the offer are refused', () => {
  const data = new Uint8Array(3000);
  const { inc } = pair(data);
  assert.equal(inc.receiveFrame(decodeFrame(encodeFrame(inc.id, 0, new Uint8Array(10))), 0)[0].code, 'bad_frame'); // not accepted yet
  const second = pair(data).inc;
  second.accept();
  assert.equal(second.receiveFrame(decodeFrame(encodeFrame(second.id, 10, new Uint8Array(10))), 0)[0].code, 'bad_frame');
});

test('a card: every thumbnail checked for size and sha-256; a bad one dropped, the card kept', () => {
  const good = new Uint8Array([1, 2, 3]);
  const thumb = (id, bytes) => ({ id, kind: 'image', mime: 'image/webp', width: 1, height: 1, natural_width: 1,
    natural_height: 1, size: bytes.length, sha256: bytesToHex(sha256(bytes)), source: null });
  const push = decodeChannel(encodeChannel({ t: 'page.push', id: 'aaaaaaaaaaaaaaaa', url: 'https://x.test/', title: 'X',
    thumbs: [thumb('0000000000000001', good), thumb('0000000000000002', good)] }));
  const cards = new CardAssembler();
  assert.deepEqual(cards.receivePush(push, 0), []);
  assert.ok(cards.owns('0000000000000001'));
  assert.deepEqual(cards.receiveFrame(decodeFrame(encodeFrame('0000000000000001', 0, good)), 1), []);
  const events = cards.receiveFrame(decodeFrame(encodeFrame('0000000000000002', 0, new Uint8Array([1, 2, 4]))), 2);
  assert.deepEqual(events.map((e) => e.type), ['refused', 'ready']);
  assert.equal(events[0].code, 'hash_mismatch');
  assert.equal(events[1].images.length, 1);
  assert.deepEqual(cards.receivePush(push, 3), []); // a replay is not shown twice
  assert.equal(cards.receiveFrame(decodeFrame(encodeFrame('0000000000000001', 0, good)), 4)[0].code, 'unknown_transfer');
  // A card whose thumbnails never come fails after the timeout, with what it has.
  const slow = decodeChannel(encodeChannel({ ...push, id: 'bbbbbbbbbbbbbbbb' }));
  cards.receivePush(slow, 0);
  assert.equal(cards.expire(30_001)[0].code, 'stalled');
});
