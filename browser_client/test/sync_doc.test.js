// core/sync_doc.js: the page-sync document of docs/SYNC.md — every operation and what state()
// shows of it, the operations' checks, a hostile peer's junk left out of state(), damaged
// updates refused, concurrent edits and deletes, the scroll counter, and garbage collection.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SyncDoc, SyncError } from '../app/core/sync_doc.js';
import { Y, encoding } from '../app/vendor/yjs.js';

const H1 = '0123456789abcdef';
const H2 = 'fedcba9876543210';
const B1 = '00000000000000b1';
const CARD = '00000000000000c1';
const badMessage = (err) => err instanceof SyncError && err.code === 'bad_message';
const badUpdate = (err) => err instanceof SyncError && err.code === 'bad_update';

/** Exchange everything both ways, as a full handshake would. */
function exchange(a, b) {
  const toB = a.encodeDiff(b.stateVector());
  const toA = b.encodeDiff(a.stateVector());
  b.applyUpdate(toB);
  a.applyUpdate(toA);
}

test('every operation, and state() as docs/SYNC.md lays it out', () => {
  const doc = new SyncDoc();
  const empty = { tabs: {}, active: null, scroll: {}, find: {}, highlights: {}, bookmarks: {},
    follow: { phone_follows_pc: true, pc_follows_phone: true }, reader: {} };
  assert.deepEqual(doc.state(), empty);
  doc.openTab('t12', 'https://a.test/', 'A', 0, 'pc');
  doc.openTab(H2, 'https://b.test/', 'B', 1.5, 'phone');
  doc.navigate('t12', 'https://a.test/2', 'A2', 'phone');
  doc.navigate('t99', 'https://gone.test/', 'Gone', 'pc'); // no such tab: nothing happens
  doc.setActive('t12');
  doc.scroll('t12', 0.25, 7, 0.5, 'pc');
  doc.scroll('t12', 0.25, 7, 0.5, 'pc');
  doc.find('t12', 'needle', 2, 5, 'phone');
  doc.addHighlight(H1, 'https://a.test/2', 3, 4, 10, 'quoted', '', 'yellow', 'phone');
  doc.editHighlight(H1, 'a note');
  doc.editHighlight(H1, null, 'blue');
  doc.addHighlight(H2, 'https://a.test/2', 0, 0, 0, '', 'x', 'pink', 'pc');
  doc.deleteHighlight(H2);
  doc.addBookmark(B1, 'https://a.test/2', 'Old', 1_700_000_000.5, 'pc');
  doc.renameBookmark(B1, 'New');
  doc.setFollow('pc_follows_phone', false);
  doc.setReader('t12', CARD, 'https://a.test/2');
  doc.closeTab(H2);
  assert.deepEqual(doc.state(), {
    tabs: { t12: { url: 'https://a.test/2', title: 'A2', order: 0, by: 'phone' } },
    active: 't12',
    scroll: { t12: { fraction: 0.25, block: 7, offset: 0.5, by: 'pc', n: 2 } },
    find: { t12: { query: 'needle', match: 2, count: 5, by: 'phone' } },
    highlights: { [H1]: { url: 'https://a.test/2', block: 3, start: 4, end: 10, quote: 'quoted', note: 'a note',
      color: 'blue', by: 'phone' } },
    bookmarks: { [B1]: { url: 'https://a.test/2', title: 'New', created: 1_700_000_000.5, by: 'pc' } },
    follow: { phone_follows_pc: true, pc_follows_phone: false },
    reader: { t12: { card: CARD, url: 'https://a.test/2' } },
  });
  // state() is plain JSON: it survives a JSON round trip unchanged.
  assert.deepEqual(JSON.parse(JSON.stringify(doc.state())), doc.state());
  // Editing or renaming what was deleted is a no-op, not a resurrection.
  doc.editHighlight(H2, 'late');
  doc.deleteBookmark(B1);
  doc.renameBookmark(B1, 'late');
  assert.deepEqual(doc.state().highlights[H2], undefined);
  assert.deepEqual(doc.state().bookmarks, {});
});

test('operations refuse arguments that do not fit, and change nothing', () => {
  const doc = new SyncDoc();
  doc.openTab('t1', 'https://a.test/', 'A', 0, 'pc');
  const before = doc.encodeState();
  const calls = [
    () => doc.openTab('T1', 'https://a.test/', 'A', 0, 'pc'), // key: "t<digits>" or 16 lower-case hex
    () => doc.openTab('__proto__', 'https://a.test/', 'A', 0, 'pc'),
    () => doc.openTab('t1', 'u'.repeat(8193), 'A', 0, 'pc'),
    () => doc.openTab('t1', 'https://a.test/', 'x'.repeat(1025), 0, 'pc'),
    () => doc.openTab('t1', 'https://a.test/', 'A', NaN, 'pc'),
    () => doc.openTab('t1', 'https://a.test/', 'A', '1', 'pc'),
    () => doc.openTab('t1', 'https://a.test/', 'A', 0, 'server'),
    () => doc.openTab('t1', 'https://a.test/\uD800', 'A', 0, 'pc'), // a lone surrogate has no UTF-8 form
    () => doc.scroll('t1', 1.01, 0, 0, 'pc'),
    () => doc.scroll('t1', 0.5, -1, 0, 'pc'),
    () => doc.scroll('t1', 0.5, 2000, 0, 'pc'), // ≤ 2000 blocks: indices 0..1999
    () => doc.scroll('t1', 0.5, 1.5, 0, 'pc'),
    () => doc.scroll('t1', 0.5, 0, -0.1, 'pc'),
    () => doc.find('t1', 'q'.repeat(257), -1, 0, 'pc'),
    () => doc.find('t1', 'q', -2, 0, 'pc'),
    () => doc.find('t1', 'q', 0, -1, 'pc'),
    () => doc.addHighlight('0123456789ABCDEF', 'https://a.test/', 0, 0, 1, 'q', '', 'yellow', 'pc'),
    () => doc.addHighlight(H1, 'https://a.test/', 0, 5, 4, 'q', '', 'yellow', 'pc'), // start after end
    () => doc.addHighlight(H1, 'https://a.test/', 0, 0, 8001, 'q', '', 'yellow', 'pc'),
    () => doc.addHighlight(H1, 'https://a.test/', 0, 0, 1, 'q'.repeat(2001), '', 'yellow', 'pc'),
    () => doc.addHighlight(H1, 'https://a.test/', 0, 0, 1, 'q', 'n'.repeat(4001), 'yellow', 'pc'),
    () => doc.addHighlight(H1, 'https://a.test/', 0, 0, 1, 'q', '', 'red', 'pc'),
    () => doc.editHighlight(H1, 5),
    () => doc.editHighlight(H1, null, 'red'),
    () => doc.addBookmark(B1, 'https://a.test/', 'B', -1, 'pc'),
    () => doc.addBookmark(B1, 'https://a.test/', 'B', Infinity, 'pc'),
    () => doc.renameBookmark(B1, 'x'.repeat(1025)),
    () => doc.setFollow('both', true),
    () => doc.setFollow('phone_follows_pc', 1),
    () => doc.setReader('t1', 'not-a-card', 'https://a.test/'),
    () => doc.setActive(7),
    () => doc.closeTab(''),
  ];
  for (const call of calls) assert.throws(call, badMessage, call.toString());
  assert.deepEqual(doc.encodeState(), before);
  // Caps count code points, as Python's len() does: 8192 of them, emoji included, are a valid url.
  doc.openTab('t2', 'https://' + '\u{1F600}'.repeat(8184), 'A', 0, 'pc');
  // Only web addresses: the PC may be asked to open them.
  assert.throws(() => doc.openTab('t3', 'javascript:alert(1)', 'A', 0, 'pc'), badMessage);
  assert.equal(Object.keys(doc.state().tabs).length, 2);
});

test('scroll counts per writer, and goes on counting in a reloaded document', () => {
  const doc = new SyncDoc();
  doc.scroll('t1', 0, 0, 0, 'pc');
  doc.scroll('t2', 0, 0, 0, 'pc');
  doc.scroll('t1', 0, 0, 0, 'phone');
  assert.deepEqual([doc.state().scroll.t1.n, doc.state().scroll.t2.n], [1, 2]);
  const reloaded = new SyncDoc();
  reloaded.applyUpdate(doc.encodeState(), 'stored');
  reloaded.scroll('t1', 0, 0, 0, 'pc');
  assert.equal(reloaded.state().scroll.t1.n, 3); // not 1 again: the same position is still a change
});

/** A hostile peer writes straight into a Y.Doc with our root names. */
function junkUpdate() {
  const evil = new Y.Doc();
  const tabs = evil.getMap('tabs');
  const record = (fields) => new Y.Map(Object.entries(fields));
  const good = { url: 'https://ok.test/', title: 'OK', order: 1, by: 'pc' };
  tabs.set('t1', record(good));
  tabs.set('t2', record({ ...good, extra: 'ignored' })); // unknown fields are left out, the entry kept
  tabs.set('t3', record({ ...good, order: 'first' }));
  tabs.set('t4', record({ url: 'https://x.test/', title: 'no order', by: 'pc' }));
  tabs.set('t5', good); // a plain value where a record belongs
  tabs.set('t6', new Y.Text('text'));
  tabs.set('T7', record(good)); // a key that is not a tab key
  tabs.set('__proto__', record(good));
  tabs.set('t8', record({ ...good, title: 'x'.repeat(1025) }));
  tabs.set('t9', record({ ...good, by: 'server' }));
  tabs.set('t10', record({ ...good, url: new Y.Text('nested') }));
  const scroll = evil.getMap('scroll');
  const okScroll = { fraction: 0.5, block: 1, offset: 0, by: 'phone', n: 4 };
  scroll.set('t1', okScroll);
  scroll.set('t2', { ...okScroll, fraction: 2 });
  scroll.set('t3', { ...okScroll, n: -1 });
  scroll.set('t4', [okScroll]);
  scroll.set('t5', record(okScroll)); // a record where a value belongs
  scroll.set('t6', new Uint8Array([1, 2]));
  scroll.set('t7', { ...okScroll, block: 10n ** 20n }); // lib0 writes BigInt; readAny gives one back
  scroll.set('t8', JSON.parse('{"__proto__": {"by": "pc"}, "fraction": 0.5, "block": 1, "offset": 0, "n": 4}'));
  scroll.set('t9', null);
  const find = evil.getMap('find');
  find.set('t1', { query: 'q', match: -1, count: 0, by: 'pc' });
  find.set('t2', { query: 'q', match: 0.5, count: 1, by: 'pc' });
  const highlights = evil.getMap('highlights');
  const okHighlight = { url: 'https://ok.test/', block: 0, start: 1, end: 2, quote: 'q', note: '', color: 'green', by: 'pc' };
  highlights.set(H1, record(okHighlight));
  highlights.set(H2, record({ ...okHighlight, start: 3 })); // start after end
  highlights.set('0000000000000003', record({ ...okHighlight, color: 'red' }));
  highlights.set('not-an-id', record(okHighlight));
  const bookmarks = evil.getMap('bookmarks');
  bookmarks.set(B1, record({ url: 'https://ok.test/', title: 'B', created: 5, by: 'phone' }));
  bookmarks.set('00000000000000b2', record({ url: 'https://ok.test/', title: 'B', created: -5, by: 'phone' }));
  evil.getMap('follow').set('phone_follows_pc', 'no'); // not a bool: as if absent
  evil.getMap('follow').set('pc_follows_phone', false);
  evil.getMap('follow').set('everyone', false);
  evil.getMap('view').set('active', { tab: 't1' });
  const reader = evil.getMap('reader');
  reader.set('t1', { card: CARD, url: 'https://ok.test/' });
  reader.set('t2', { card: 'CARD', url: 'https://ok.test/' });
  evil.getArray('tabs_list').push(['junk']); // a root we do not read
  // Another writer uses our roots as a text and a list: their items are not map entries.
  const other = new Y.Doc();
  other.getText('view').insert(0, 'active');
  other.getArray('follow').push([false]);
  return Y.mergeUpdates([Y.encodeStateAsUpdate(evil), Y.encodeStateAsUpdate(other)]);
}

test("a hostile peer's junk never reaches state()", () => {
  const doc = new SyncDoc();
  const seen = [];
  doc.onChange((state, info) => seen.push([state, info]));
  doc.applyUpdate(junkUpdate());
  const expected = {
    tabs: { t1: { url: 'https://ok.test/', title: 'OK', order: 1, by: 'pc' }, t2: { url: 'https://ok.test/', title: 'OK', order: 1, by: 'pc' } },
    active: null,
    scroll: { t1: { fraction: 0.5, block: 1, offset: 0, by: 'phone', n: 4 } },
    find: { t1: { query: 'q', match: -1, count: 0, by: 'pc' } },
    highlights: { [H1]: { url: 'https://ok.test/', block: 0, start: 1, end: 2, quote: 'q', note: '', color: 'green', by: 'pc' } },
    bookmarks: { [B1]: { url: 'https://ok.test/', title: 'B', created: 5, by: 'phone' } },
    follow: { phone_follows_pc: true, pc_follows_phone: false },
    reader: { t1: { card: CARD, url: 'https://ok.test/' } },
  };
  assert.deepEqual(doc.state(), expected);
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0], [expected, { local: false }]);
  assert.equal(Object.getPrototypeOf(doc.state().tabs), Object.prototype);
  // The document still works, and local ops on top of junk replace it.
  doc.openTab('t3', 'https://fixed.test/', 'Fixed', 2, 'phone');
  assert.equal(doc.state().tabs.t3.title, 'Fixed');
});

test('damaged updates are refused with bad_update and leave the document as it was', () => {
  const doc = new SyncDoc();
  doc.openTab('t1', 'https://a.test/', 'A', 0, 'pc');
  const good = doc.encodeState();
  const target = new SyncDoc();
  for (const bad of [new Uint8Array(0), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), good.subarray(0, good.length - 3),
    'not bytes']) {
    assert.throws(() => target.applyUpdate(bad), badUpdate);
  }
  assert.throws(() => target.encodeDiff(new Uint8Array([5, 1])), badUpdate);
  assert.deepEqual(target.state().tabs, {});
  // Random damage never escapes as anything but a SyncError, and never breaks the document.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 500; i++) {
    const damaged = good.slice();
    damaged[Math.floor(random() * damaged.length)] = Math.floor(random() * 256);
    try {
      target.applyUpdate(damaged);
    } catch (err) {
      assert.ok(err instanceof SyncError && err.code === 'bad_update', String(err));
    }
  }
  target.applyUpdate(good);
  target.openTab('t2', 'https://b.test/', 'B', 1, 'phone');
  assert.equal(target.state().tabs.t2.title, 'B');
});

test('concurrent changes merge: fields independently, and a delete beats an edit', () => {
  const pc = new SyncDoc();
  pc.openTab('t1', 'https://a.test/', 'A', 0, 'pc');
  pc.addHighlight(H1, 'https://a.test/', 0, 0, 1, 'q', '', 'yellow', 'pc');
  pc.addBookmark(B1, 'https://a.test/', 'B', 1, 'pc');
  const phone = new SyncDoc();
  exchange(pc, phone);
  // Offline on both sides:
  pc.editHighlight(H1, 'note from pc');
  phone.editHighlight(H1, null, 'pink');
  phone.deleteBookmark(B1);
  pc.renameBookmark(B1, 'renamed on pc');
  pc.navigate('t1', 'https://a.test/next', 'Next', 'pc');
  phone.addBookmark('00000000000000b2', 'https://p.test/', 'From phone', 2, 'phone');
  exchange(pc, phone);
  assert.deepEqual(pc.state(), phone.state());
  const state = pc.state();
  assert.equal(state.highlights[H1].note, 'note from pc');
  assert.equal(state.highlights[H1].color, 'pink');
  assert.deepEqual(Object.keys(state.bookmarks), ['00000000000000b2']);
  assert.equal(state.tabs.t1.url, 'https://a.test/next');
});

test('listeners: local updates only for local operations; changes with who made them', () => {
  const a = new SyncDoc();
  const b = new SyncDoc();
  const updates = [];
  const changes = [];
  const stopUpdates = a.onLocalUpdate((u) => updates.push(u));
  a.onChange((state, info) => changes.push(info.local));
  a.setActive('t1');
  b.setActive('t2');
  a.applyUpdate(b.encodeState());
  a.editHighlight(H1, 'nothing to edit'); // changes nothing: no update, no change event
  assert.equal(updates.length, 1);
  assert.deepEqual(changes, [true, false]);
  // The update a listener got is exactly the operation: applied elsewhere it does the same.
  const c = new SyncDoc();
  c.applyUpdate(updates[0]);
  assert.equal(c.state().active, 't1');
  stopUpdates();
  a.setActive('t3');
  assert.equal(updates.length, 1);
});

test('garbage collection: 10,000 scrolls stay small with gc, and do not without', () => {
  const sizes = {};
  for (const gc of [true, false]) {
    const doc = new SyncDoc({ gc });
    doc.openTab('t1', 'https://a.test/', 'A', 0, 'pc');
    for (let i = 0; i < 10_000; i++) doc.scroll('t1', (i % 100) / 100, i % 50, 0.5, 'pc');
    sizes[gc] = doc.encodeState().length;
    const copy = new SyncDoc();
    copy.applyUpdate(doc.encodeState());
    assert.equal(copy.state().scroll.t1.n, 10_000);
  }
  assert.ok(sizes.true < 500, `with gc: ${sizes.true} bytes`);
  assert.ok(sizes.false > 200_000, `without gc: ${sizes.false} bytes`);
});

test('an update with a varuint count past the data is refused, not looped on', () => {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 2 ** 31); // "this many structs follow", and then nothing
  const doc = new SyncDoc();
  assert.throws(() => doc.applyUpdate(encoding.toUint8Array(encoder)), badUpdate);
});
