// core/card.js with a reader text (page.push `text`: one more frame, checked like a thumbnail)
// and core/reader.js (the gzip'd reader JSON of docs/SYNC.md, unpacked under a 1 MiB cap and
// checked block by block).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { bytesToHex } from '../app/core/bytes.js';
import { CardAssembler } from '../app/core/card.js';
import { decodeChannel, encodeChannel } from '../app/core/channel.js';
import { decodeFrame, encodeFrame } from '../app/core/frames.js';
import { decodeReaderText } from '../app/core/reader.js';
import { SyncError } from '../app/core/sync_doc.js';
import { sha256 } from '../app/vendor/noble.js';

const TEXT_ID = '00000000000000e1';
const reader = (blocks, extra = {}) => ({ v: 1, url: 'https://a.test/', title: 'A', truncated: false, blocks, ...extra });
const gz = (value) => new Uint8Array(gzipSync(typeof value === 'string' ? value : JSON.stringify(value)));
const frame = (id, bytes) => decodeFrame(encodeFrame(id, 0, bytes));
const thumb = (id, bytes) => ({ id, kind: 'image', mime: 'image/webp', width: 1, height: 1, natural_width: 1,
  natural_height: 1, size: bytes.length, sha256: bytesToHex(sha256(bytes)), source: 'https://a.test/i.png' });

function pushWith(text, thumbs = [], id = 'aaaaaaaaaaaaaaaa') {
  return decodeChannel(encodeChannel({ t: 'page.push', id, url: 'https://a.test/', title: 'A', thumbs, doc: '00000000000000d0',
    text: { id: TEXT_ID, size: text.length, sha256: bytesToHex(sha256(text)) } }));
}

test('a card with text waits for the text frame, checks it, and hands over its bytes', async () => {
  const text = gz(reader([{ k: 'h1', t: 'Title' }, { k: 'img', t: 'alt', src: 'https://a.test/i.png' }]));
  const image = new Uint8Array([9, 9, 9]);
  const cards = new CardAssembler();
  assert.deepEqual(cards.receivePush(pushWith(text, [thumb('00000000000000f1', image)]), 0), []);
  assert.ok(cards.owns(TEXT_ID));
  assert.deepEqual(cards.receiveFrame(frame('00000000000000f1', image), 1), []); // the thumbnail alone is not enough
  const [ready] = cards.receiveFrame(frame(TEXT_ID, text), 2);
  assert.equal(ready.type, 'ready');
  assert.deepEqual(ready.text, text);
  assert.equal(ready.images.length, 1);
  assert.equal(cards.owns(TEXT_ID), false);
  const view = await decodeReaderText(ready.text);
  assert.deepEqual(view.blocks, [{ k: 'h1', t: 'Title' }, { k: 'img', t: 'alt', src: 'https://a.test/i.png' }]);

  // A damaged text is dropped like a bad thumbnail: the card still comes, without it.
  const other = new CardAssembler();
  other.receivePush(pushWith(text), 0);
  const damaged = text.slice();
  damaged[20] ^= 1;
  const events = other.receiveFrame(frame(TEXT_ID, damaged), 1);
  assert.deepEqual(events.map((e) => [e.type, e.code]), [['refused', 'hash_mismatch'], ['ready', undefined]]);
  assert.equal(events[1].text, null);

  // A card without text is ready as before, with text null; one whose text never comes stalls.
  const plain = new CardAssembler();
  const [bare] = plain.receivePush(decodeChannel(encodeChannel({ t: 'page.push', id: 'bbbbbbbbbbbbbbbb', url: 'https://a.test/',
    title: 'A', thumbs: [] })), 0);
  assert.deepEqual([bare.type, bare.text], ['ready', null]);
  plain.receivePush(pushWith(text, [], 'cccccccccccccccc'), 0);
  const [stalled] = plain.expire(30_000);
  assert.deepEqual([stalled.type, stalled.code, stalled.text], ['failed', 'stalled', null]);
  assert.match(stalled.message, /0 of 1/);

  // A text id that is also a thumbnail's id is refused like duplicate thumbnails.
  const [clash] = new CardAssembler().receivePush(pushWith(text, [thumb(TEXT_ID, image)]), 0);
  assert.deepEqual([clash.type, clash.code], ['failed', 'bad_message']);
});

test('reader text: blocks checked one by one, their positions kept', async () => {
  const view = await decodeReaderText(gz(reader([
    { k: 'h2', t: 'Head' },
    { k: 'video', t: 'not a kind' },
    { k: 'p', t: 42 },
    { k: 'img', t: 'no src' },
    'not an object',
    { k: 'p', t: 'Last', extra: 'ignored' },
  ])));
  assert.equal(view.dropped, 4);
  assert.deepEqual(view.blocks.map((b) => [b.k, b.t]), [['h2', 'Head'], ['p', ''], ['p', ''], ['p', ''], ['p', ''], ['p', 'Last']]);
  assert.equal(view.blocks[5].extra, undefined);
  assert.equal(view.truncated, false);
});

test('reader text: past 2000 blocks or 8000 characters the rest is cut and marked truncated', async () => {
  const many = await decodeReaderText(gz(reader(Array.from({ length: 2500 }, (_, i) => ({ k: 'li', t: `${i}` })))));
  assert.equal(many.blocks.length, 2000);
  assert.equal(many.blocks[1999].t, '1999');
  assert.equal(many.truncated, true);
  const long = await decodeReaderText(gz(reader([{ k: 'pre', t: '\u{1F600}'.repeat(9000) }])));
  assert.equal([...long.blocks[0].t].length, 8000); // code points, as Python counts
  assert.equal(long.truncated, true);
});

test('reader text: a gzip bomb, and anything that is not reader JSON, is refused', async () => {
  const refused = (pattern) => (err) => err instanceof SyncError && err.code === 'bad_message' && pattern.test(err.message);
  // gzip packs up to about 1000:1: 8 MiB of spaces fit in some 8 KiB, far under one frame.
  const bomb = gz(`{"v":1,"url":"https://a.test/","title":"${' '.repeat(8 * 1024 * 1024)}","truncated":false,"blocks":[]}`);
  assert.ok(bomb.length < 65_518, `${bomb.length}`);
  await assert.rejects(decodeReaderText(bomb), refused(/more than 1 MiB/));
  // Just under the cap unpacks.
  const fits = await decodeReaderText(gz(reader([{ k: 'p', t: 'x'.repeat(7000) }])));
  assert.equal(fits.blocks[0].t.length, 7000);
  await assert.rejects(decodeReaderText(new Uint8Array([1, 2, 3, 4])), refused(/not gzip/));
  await assert.rejects(decodeReaderText(gz('{"v":1')), refused(/not UTF-8 JSON/));
  await assert.rejects(decodeReaderText(new Uint8Array([...gz('[]')].slice(0, 12))), refused(/not gzip/)); // cut short
  await assert.rejects(decodeReaderText(gz(reader([], { v: 2 }))), refused(/version 1/));
  await assert.rejects(decodeReaderText(gz(reader([], { url: 5 }))), refused(/url or title/));
  await assert.rejects(decodeReaderText(gz(reader([], { truncated: 'no' }))), refused(/blocks/));
  await assert.rejects(decodeReaderText(new Uint8Array(65_519)), refused(/larger than one frame/));
  await assert.rejects(decodeReaderText(new Uint8Array(0)), refused(/no bytes/));
});
