// core/sync_wire.js: two SyncDocs kept in step by SyncLinks, every message through the real
// channel codec — the handshake, reordered / duplicated / delayed delivery, 32 KiB chunks, the
// 1 MiB cap and the other refusals, coalescing, and the re-sync after a dropped update. Also
// the bytes: y-protocols' own reader reads ours, and the sync.* messages are msgspec's.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeChannel, encodeChannel } from '../app/core/channel.js';
import { SyncDoc } from '../app/core/sync_doc.js';
import { MAX_SYNC_CHUNK, SyncLink } from '../app/core/sync_wire.js';
import { Y, decoding, encoding, syncProtocol } from '../app/vendor/yjs.js';

const DOC = '00000000000000d0';
const wire = (message) => decodeChannel(encodeChannel(message)); // what the other side's codec hands over

/** One side: its document, its link, and the channel messages it has sent. */
function side(options = {}) {
  const sync = new SyncDoc();
  const outbox = [];
  const pending = { count: 0 };
  const link = new SyncLink({ doc: DOC, sync, send: (m) => outbox.push(wire(m)), onPending: () => pending.count++, ...options });
  return { sync, link, outbox, pending };
}

/** Deliver what `from` sent to `to`, in order (a data channel is ordered); returns the faults. */
function deliver(from, to, now = 0) {
  const faults = [];
  while (from.outbox.length) {
    const fault = to.link.receive(from.outbox.shift(), now);
    if (fault) faults.push(fault);
  }
  return faults;
}

/** Whole messages (a run of chunks up to more=false) from an outbox. */
function takeMessages(outbox) {
  const messages = [];
  let current = [];
  for (const chunk of outbox.splice(0)) {
    current.push(chunk);
    if (!chunk.more) {
      messages.push(current);
      current = [];
    }
  }
  assert.deepEqual(current, []);
  return messages;
}

function prng(seed) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

test('the handshake: both send step 1, answer with step 2, and end up equal', () => {
  const pc = side();
  const phone = side();
  pc.sync.openTab('t1', 'https://a.test/', 'A', 0, 'pc'); // before the session: carried by the handshake
  phone.sync.addBookmark('00000000000000b1', 'https://b.test/', 'B', 1, 'phone');
  pc.link.start();
  phone.link.start();
  assert.deepEqual(deliver(pc, phone), []); // pc's step 1 -> phone answers step 2
  assert.deepEqual(deliver(phone, pc), []); // phone's step 1 and step 2 -> pc applies, answers
  assert.deepEqual(deliver(pc, phone), []);
  assert.deepEqual(pc.sync.state(), phone.sync.state());
  assert.equal(phone.sync.state().tabs.t1.url, 'https://a.test/');
  assert.ok(pc.link.synced && phone.link.synced);
  // Updates made before start() were not queued twice: the handshake carried them.
  assert.equal(pc.link.flush(1000), 0);
});

test('random concurrent operations converge through reordered, duplicated and delayed messages', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = prng(seed);
    const pick = (list) => list[Math.floor(random() * list.length)];
    const a = side();
    const b = side();
    a.link.start();
    b.link.start();
    const tabs = ['t1', 't2', 't3'];
    const ids = ['0000000000000001', '0000000000000002', '0000000000000003'];
    const ops = [
      (s, by) => s.openTab(pick(tabs), `https://${by}.test/${Math.floor(random() * 9)}`, by, Math.floor(random() * 5), by),
      (s) => s.closeTab(pick(tabs)),
      (s, by) => s.navigate(pick(tabs), 'https://nav.test/', 'Nav', by),
      (s) => s.setActive(pick(tabs)),
      (s, by) => s.scroll(pick(tabs), random(), Math.floor(random() * 100), random(), by),
      (s, by) => s.find(pick(tabs), pick(['', 'a', 'bc']), -1, Math.floor(random() * 3), by),
      (s, by) => s.addHighlight(pick(ids), 'https://h.test/', 1, 2, 5, 'q', '', pick(['yellow', 'blue']), by),
      (s) => s.editHighlight(pick(ids), pick([null, 'note']), pick([null, 'green'])),
      (s) => s.deleteHighlight(pick(ids)),
      (s, by) => s.addBookmark(pick(ids), 'https://b.test/', 'B', 10, by),
      (s) => s.renameBookmark(pick(ids), `R${Math.floor(random() * 9)}`),
      (s) => s.deleteBookmark(pick(ids)),
      (s) => s.setFollow(pick(['phone_follows_pc', 'pc_follows_phone']), random() < 0.5),
      (s) => s.setReader(pick(tabs), '00000000000000c1', 'https://r.test/'),
    ];
    /** @type {{to: object, message: object[], at: number}[]} */
    let inFlight = [];
    for (let step = 0; step < 300; step++) {
      const now = step * 10;
      const [writer, by] = random() < 0.5 ? [a, 'pc'] : [b, 'phone'];
      pick(ops)(writer.sync, by);
      for (const [from, to] of [[a, b], [b, a]]) {
        from.link.flush(now);
        for (const message of takeMessages(from.outbox)) {
          // Delayed by 0..200 ms, and one in five sent twice (a resend after a reconnect).
          inFlight.push({ to, message, at: now + random() * 200 });
          if (random() < 0.2) inFlight.push({ to, message, at: now + random() * 400 });
        }
      }
      // Delivery in arrival order, which is not the order they were sent in.
      inFlight.sort((x, y) => x.at - y.at);
      while (inFlight.length && inFlight[0].at <= now) {
        const { to, message } = inFlight.shift();
        for (const chunk of message) assert.equal(to.link.receive(chunk, now), null);
      }
    }
    for (const s of [a, b]) s.link.flush(1e9);
    for (const [from, to] of [[a, b], [b, a]]) for (const m of takeMessages(from.outbox)) inFlight.push({ to, message: m, at: 1e9 });
    // The rest, shuffled.
    inFlight = inFlight.map((x) => [random(), x]).sort((p, q) => p[0] - q[0]).map(([, x]) => x);
    for (const { to, message } of inFlight) for (const chunk of message) assert.equal(to.link.receive(chunk, 1e9), null);
    assert.deepEqual(a.sync.state(), b.sync.state(), `seed ${seed}`);
    assert.deepEqual(Y.decodeStateVector(a.sync.stateVector()), Y.decodeStateVector(b.sync.stateVector()));
    assert.ok(Object.keys(a.sync.state().scroll).length > 0, 'the operations did something');
  }
});

test('a 100 KB update goes out in chunks of at most 32 KiB and is put back together', () => {
  const a = side();
  const b = side();
  a.link.start();
  b.link.start();
  deliver(a, b);
  deliver(b, a);
  deliver(a, b);
  // 25 highlights with 4000-character notes: one batch of about 100 KB.
  for (let i = 0; i < 25; i++) {
    a.sync.addHighlight(i.toString(16).padStart(16, '0'), 'https://a.test/', i, 0, 1, 'q', `${i}`.padEnd(4000, 'n'), 'yellow', 'pc');
  }
  assert.equal(a.link.flush(0), 4);
  const chunks = a.outbox.slice();
  const total = chunks.reduce((n, c) => n + c.data.length, 0);
  assert.ok(total > 100_000, `${total} bytes`);
  assert.deepEqual(chunks.map((c) => c.more), [true, true, true, false]);
  assert.ok(chunks.every((c) => c.data.length <= MAX_SYNC_CHUNK && c.doc === DOC));
  assert.deepEqual(chunks.slice(0, 3).map((c) => c.data.length), [MAX_SYNC_CHUNK, MAX_SYNC_CHUNK, MAX_SYNC_CHUNK]);
  assert.deepEqual(deliver(a, b), []);
  assert.equal(Object.keys(b.sync.state().highlights).length, 25);
  // The same document as step 2 to a newcomer: chunked too.
  const c = side();
  c.link.start();
  deliver(c, a);
  assert.ok(a.outbox.length >= 4);
  assert.deepEqual(deliver(a, c), []);
  assert.deepEqual(c.sync.state(), a.sync.state());
});

/** A whole sync message (outer 0, type, payload) as chunks. */
function chunksOf(bytes, doc = DOC) {
  const out = [];
  for (let at = 0; at < bytes.length; at += MAX_SYNC_CHUNK) {
    out.push(wire({ t: 'sync.update', doc, data: bytes.slice(at, at + MAX_SYNC_CHUNK), more: at + MAX_SYNC_CHUNK < bytes.length }));
  }
  return out;
}

function updateMessage(update) {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  syncProtocol.writeUpdate(encoder, update);
  return encoding.toUint8Array(encoder);
}

test('refusals: over 1 MiB, another doc, garbage — each one error, and the link goes on', () => {
  const b = side();
  b.link.start();
  b.outbox.length = 0;
  const receiveAll = (chunks) => chunks.map((c) => b.link.receive(c, 0)).filter(Boolean);

  // 1 MiB + 1 byte reassembled: one update_too_large, the rest of that message skipped.
  const huge = new Uint8Array(1024 * 1024 + 1);
  const faults = receiveAll(chunksOf(huge));
  assert.deepEqual(faults.map((f) => f.code), ['update_too_large']);
  assert.match(faults[0].message, /1 MiB/);

  // A sync message for another document.
  const writer = new SyncDoc();
  writer.setActive('t5');
  const message = updateMessage(writer.encodeState());
  assert.deepEqual(receiveAll(chunksOf(message, '00000000000000ff')).map((f) => f.code), ['unknown_doc']);

  // Not sync messages, or damaged ones.
  const garbage = [
    new Uint8Array([1, 0, 0]), // another outer type (awareness)
    new Uint8Array([0, 7, 1, 0]), // an unknown sync type
    new Uint8Array([0, 2, 40, 1, 2]), // a payload shorter than its length
    updateMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), // framed well, not an update
    new Uint8Array([...message, 0]), // bytes after the payload
  ];
  for (const bytes of garbage) assert.deepEqual(receiveAll(chunksOf(bytes)).map((f) => f.code), ['bad_update'], String(bytes));
  assert.equal(b.sync.state().active, null);
  assert.deepEqual(b.outbox, []); // nothing was answered to any of it

  // And then a good message still works.
  assert.deepEqual(receiveAll(chunksOf(message)), []);
  assert.equal(b.sync.state().active, 't5');
});

test('local updates are merged and sent at most once per 50 ms', () => {
  const a = side();
  const b = side();
  a.link.start();
  b.link.start();
  deliver(a, b);
  deliver(b, a);
  deliver(a, b);
  assert.equal(a.link.nextDeadline(), null);
  a.sync.scroll('t1', 0.1, 1, 0, 'pc');
  assert.equal(a.pending.count, 1);
  assert.equal(a.link.nextDeadline(), 0); // due now: the first change after a quiet spell goes at once
  assert.equal(a.link.flush(0), 1);
  for (let i = 2; i <= 20; i++) a.sync.scroll('t1', i / 100, i, 0, 'pc');
  a.sync.addBookmark('00000000000000b1', 'https://b.test/', 'B', 1, 'pc');
  assert.equal(a.pending.count, 2); // told once per wait, not per change
  assert.equal(a.link.nextDeadline(), 50);
  assert.equal(a.link.flush(20), 0);
  assert.equal(a.link.flush(49), 0);
  assert.equal(a.outbox.length, 1);
  assert.equal(a.link.flush(50), 1); // 21 changes, one message
  assert.equal(a.outbox.length, 2);
  assert.deepEqual(deliver(a, b), []);
  assert.equal(b.sync.state().scroll.t1.n, 20);
  assert.equal(b.sync.state().bookmarks['00000000000000b1'].title, 'B');
  assert.equal(a.link.nextDeadline(), null);
});

test('after a dropped update the receiver asks again by state vector, 1 s after the drop', () => {
  const a = side();
  const b = side();
  a.link.start();
  b.link.start();
  deliver(a, b);
  deliver(b, a);
  deliver(a, b);
  a.sync.addBookmark('00000000000000b1', 'https://b.test/', 'Lost', 1, 'pc');
  a.link.flush(0);
  a.outbox.length = 0; // the rate limit dropped it on b's side
  b.link.behind(100);
  assert.equal(b.link.nextDeadline(), 1100);
  assert.equal(b.link.resyncDue(600), false);
  b.link.behind(700); // still flooded: the wait starts again
  assert.equal(b.link.resyncDue(1100), false);
  assert.equal(b.link.resyncDue(1700), true);
  assert.equal(b.link.resyncDue(5000), false); // once
  assert.deepEqual(deliver(b, a), []); // step 1 -> a answers with step 2
  assert.deepEqual(deliver(a, b), []);
  assert.equal(b.sync.state().bookmarks['00000000000000b1'].title, 'Lost');
});

test('a chunk dropped mid-message: the rest of it is skipped, the next message reads', () => {
  const a = side();
  const b = side();
  b.link.start();
  b.outbox.length = 0;
  for (let i = 0; i < 25; i++) a.sync.addHighlight(i.toString(16).padStart(16, '0'), 'https://a.test/', 0, 0, 1, 'q', 'n'.repeat(4000), 'yellow', 'pc');
  const big = chunksOf(updateMessage(a.sync.encodeState()));
  assert.equal(b.link.receive(big[0], 0), null);
  b.link.behind(0); // big[1] was dropped
  for (const chunk of big.slice(2)) assert.equal(b.link.receive(chunk, 0), null);
  const small = new SyncDoc();
  small.setActive('t1');
  for (const chunk of chunksOf(updateMessage(small.encodeState()))) assert.equal(b.link.receive(chunk, 0), null);
  assert.equal(b.sync.state().active, 't1');
  assert.ok(b.link.resyncDue(1000));
});

test("the bytes are y-protocols': its own reader answers our step 1 and applies our updates", () => {
  const a = side();
  a.sync.openTab('t1', 'https://a.test/', 'A', 0, 'pc');
  a.link.start();
  const [step1] = a.outbox.splice(0);
  const expected = encoding.createEncoder();
  encoding.writeVarUint(expected, 0);
  syncProtocol.writeSyncStep1(expected, a.sync.ydoc);
  assert.deepEqual(step1.data, encoding.toUint8Array(expected));
  // A plain Y.Doc with y-protocols' readSyncMessage, as y-websocket would run it.
  const other = new Y.Doc();
  other.getMap('view').set('active', 't1');
  const decoder = decoding.createDecoder(step1.data);
  assert.equal(decoding.readVarUint(decoder), 0);
  const reply = encoding.createEncoder();
  encoding.writeVarUint(reply, 0);
  assert.equal(syncProtocol.readSyncMessage(decoder, reply, other, 'test'), syncProtocol.messageYjsSyncStep1);
  assert.equal(a.link.receive(wire({ t: 'sync.update', doc: DOC, data: encoding.toUint8Array(reply), more: false }), 0), null);
  assert.equal(a.sync.state().active, 't1');
  Y.applyUpdate(other, a.sync.encodeState()); // what a's step 2 to other's step 1 would carry
  a.sync.setActive('t2');
  a.link.flush(0);
  const [update] = a.outbox.splice(0);
  const updateDecoder = decoding.createDecoder(update.data);
  assert.equal(decoding.readVarUint(updateDecoder), 0);
  assert.equal(syncProtocol.readSyncMessage(updateDecoder, encoding.createEncoder(), other, 'test'), syncProtocol.messageYjsUpdate);
  assert.equal(other.getMap('view').get('active'), 't2');
});

test('sync.* channel messages and page.push text are msgspec bytes both ways', () => {
  // The strings below are what signaling/schema.py encode() writes for the same records.
  const samples = [
    '{"t":"sync.start","v":1}',
    '{"t":"sync.open","doc":"00000000000000bb","rejoin":false,"v":1}',
    '{"t":"sync.update","doc":"00000000000000bb","data":"AAABAA==","more":false,"v":1}',
    '{"t":"sync.reader","doc":"00000000000000bb","card":"00000000000000cc","v":1}',
    '{"t":"sync.stop","doc":"00000000000000bb","v":1}',
    '{"t":"sync.refused","code":"no_access","message":"m","v":1}',
    '{"t":"page.push","id":"0123456789abcdef","url":"https://example.org/x","title":"T","thumbs":[],"pull":null,' +
      `"text":{"id":"00000000000000aa","size":5,"sha256":"${'a'.repeat(64)}","encoding":"gzip"},"doc":"00000000000000bb","v":1}`,
  ];
  for (const sample of samples) assert.equal(encodeChannel({ ...decodeChannel(sample) }), sample);
  assert.equal(encodeChannel({ t: 'sync.update', doc: '00000000000000bb', data: new Uint8Array([0, 0, 1, 0]) }), samples[2]);
  assert.equal(decodeChannel(samples[6]).text.size, 5);
  for (const bad of [
    '{"t":"sync.update","doc":"00000000000000bb","data":"AA==","more":1}', // a bool is a bool
    '{"t":"sync.update","doc":"00000000000000BB","data":"AA==","more":false}',
    '{"t":"sync.update","doc":"00000000000000bb","data":"","more":false}',
    samples[6].replace('"encoding":"gzip"', '"encoding":"br"'),
    samples[6].replace('"size":5', '"size":0'),
    samples[6].replace('"encoding":"gzip"', '"encoding":"gzip","x":1'),
    samples[6].replace('"text":{', '"text":[{').replace('"gzip"}', '"gzip"}]'),
  ]) assert.throws(() => decodeChannel(bad), (err) => err.code === 'bad_message', bad);
  // A chunk of 32 KiB is a valid message, one byte more is not.
  encodeChannel({ t: 'sync.update', doc: DOC, data: new Uint8Array(MAX_SYNC_CHUNK) });
  assert.throws(() => encodeChannel({ t: 'sync.update', doc: DOC, data: new Uint8Array(MAX_SYNC_CHUNK + 1) }), TypeError);
});
