// channel.js and wire.js: the data channel's control messages and what a phone says to the
// server, in msgspec's bytes (tag first, "v" last, defaults written, floats as floats), with
// msgspec's refusals. (tests/unit/test_js_wire_tables.py holds the tables to msgspec's own.)
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CHANNEL_SCHEMA, ERROR_CODES, LATER_TAGS, decodeChannel, encodeChannel } from '../app/core/channel.js';
import { PeerbeamError } from '../app/core/errors.js';
import { decodeServer, encodeClient } from '../app/core/wire.js';

const refused = (code) => (err) => err instanceof PeerbeamError && err.code === code;

test('channel messages encode as msgspec does', () => {
  const mac = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(encodeChannel({ t: 'bind', mac }), '{"t":"bind","mac":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","v":1}');
  assert.equal(encodeChannel({ t: 'text', id: 'a-_9', text: 'é\n"' }), '{"t":"text","id":"a-_9","text":"é\\n\\"","v":1}');
  // msgspec writes a float field with a fraction even when it is whole.
  assert.equal(encodeChannel({ t: 'ping', id: 3, sent_at: 5 }), '{"t":"ping","id":3,"sent_at":5.0,"v":1}');
  assert.equal(encodeChannel({ t: 'pong', id: 3, sent_at: 12.25 }), '{"t":"pong","id":3,"sent_at":12.25,"v":1}');
  assert.equal(encodeChannel({ t: 'unpair' }), '{"t":"unpair","v":1}');
  assert.equal(encodeChannel({ t: 'error', code: 'bad_message', message: 'x' }),
    '{"t":"error","code":"bad_message","message":"x","v":1}');
});

test('channel messages decode from any key order, with their bounds checked', () => {
  assert.deepEqual(decodeChannel('{"sent_at":1,"id":7,"t":"ping"}'), { t: 'ping', id: 7, sent_at: 1, v: 1 });
  assert.equal(decodeChannel(`{"t":"text","id":"x","text":"${'a'.repeat(16384)}"}`).text.length, 16384);
  const bad = ['{"t":"text","id":"x y","text":""}', '{"t":"text","id":"","text":""}',
    `{"t":"text","id":"x","text":"${'a'.repeat(16385)}"}`, '{"t":"ping","id":1.5,"sent_at":1}',
    '{"t":"ping","id":1,"sent_at":"1"}', '{"t":"error","code":"nope","message":""}',
    '{"t":"bind","mac":"AAAA"}', '{"t":"unpair","extra":1}', '{"t":"nope"}', '[]'];
  for (const input of bad) assert.throws(() => decodeChannel(input), refused('bad_message'), input);
  assert.throws(() => decodeChannel('{'), refused('bad_json'));
  assert.throws(() => decodeChannel(`{"t":"text","id":"x","text":"${'a'.repeat(70000)}"}`), refused('frame_too_large'));
  // Python measures a string message in code points: 33 000 emoji (66 000 UTF-16 units) are
  // not too large for it, only too long a text; 66 000 are too large.
  assert.throws(() => decodeChannel(`{"t":"text","id":"x","text":"${'\u{1F600}'.repeat(33000)}"}`),
    refused('bad_message'));
  assert.throws(() => decodeChannel(`{"t":"text","id":"x","text":"${'\u{1F600}'.repeat(66000)}"}`),
    refused('frame_too_large'));
});

// The bytes below are what msgspec writes for the same records (signaling/schema.py encode).
const PUSH = '{"t":"page.push","id":"0123456789abcdef","url":"https://example.org/é","title":"T \\"x\\"","thumbs":[{"id":"00000000000000ff","kind":"image","mime":"image/webp","width":320,"height":200,"natural_width":1600,"natural_height":1000,"size":1234,"sha256":"' + 'a'.repeat(64) + '","source":"https://example.org/a.jpg"}],"pull":"p1","text":null,"doc":null,"v":1}';
const OFFER = '{"t":"transfer.offer","id":"0123456789abcdef","name":"a b.bin","size":20,"sha256":"' + 'b'.repeat(64) + '","mime":null,"v":1}';

test('files and page cards: msgspec bytes both ways, nested thumbnails checked', () => {
  assert.deepEqual(LATER_TAGS, []);
  const push = decodeChannel(PUSH);
  assert.equal(push.thumbs[0].natural_width, 1600);
  assert.equal(encodeChannel({ ...push }), PUSH);
  assert.equal(encodeChannel({ t: 'page.push', id: '0123456789abcdef', url: 'https://example.org/é', title: 'T "x"', pull: 'p1',
    thumbs: [{ id: '00000000000000ff', mime: 'image/webp', width: 320, height: 200, natural_width: 1600,
      natural_height: 1000, size: 1234, sha256: 'a'.repeat(64), source: 'https://example.org/a.jpg' }] }), PUSH);
  assert.equal(encodeChannel({ t: 'transfer.offer', id: '0123456789abcdef', name: 'a b.bin', size: 20, sha256: 'b'.repeat(64) }), OFFER);
  assert.equal(decodeChannel(OFFER).mime, null);
  assert.equal(encodeChannel({ t: 'page.pull', id: 'abc' }), '{"t":"page.pull","id":"abc","v":1}');
  for (const bad of [
    PUSH.replace('"width":320', '"width":0'), PUSH.replace('"kind":"image"', '"kind":"video"'),
    PUSH.replace('"size":1234', '"size":1234,"extra":1'), PUSH.replace('https://example.org/é', 'javascript:alert(1)'),
    PUSH.replace('"thumbs":[', '"thumbs":[1,'), OFFER.replace('"size":20', '"size":-1'),
    OFFER.replace('0123456789abcdef', '0123456789ABCDEF'), '{"t":"page.nope"}',
  ]) assert.throws(() => decodeChannel(bad), refused('bad_message'), bad);
  assert.ok(ERROR_CODES.includes('interception') && ERROR_CODES.length === new Set(ERROR_CODES).size);
});

test('the encoder refuses what the peer would refuse, as a local error', () => {
  for (const message of [{ t: 'text', id: 'bad id', text: '' }, { t: 'ping', id: 1, sent_at: Infinity },
    { t: 'ping', id: 2 ** 53, sent_at: 1 }, { t: 'bind', mac: new Uint8Array(31) }, { t: 'nope' }]) {
    assert.throws(() => encodeChannel(message), TypeError, JSON.stringify(message));
  }
  assert.throws(() => encodeChannel({ t: 'text', id: 'x', text: '\u{1F600}'.repeat(16384) }), RangeError);
});

test('what a phone sends the server', () => {
  assert.equal(encodeClient({ t: 'pair.peek', token: 'AQE' }), '{"t":"pair.peek","token":"AQE","v":1}');
  assert.equal(encodeClient({ t: 'pair.join', token: 'AQE', name: 'Phone' }),
    '{"t":"pair.join","token":"AQE","name":"Phone","v":1}');
  assert.equal(encodeClient({ t: 'rendezvous', rid: 'a_b-c' }), '{"t":"rendezvous","rid":"a_b-c","v":1}');
  assert.equal(encodeClient({ t: 'relay', data: new Uint8Array([1, 2, 3]) }), '{"t":"relay","data":"AQID","v":1}');
  assert.throws(() => encodeClient({ t: 'pair.join', token: '', name: 'P' }), TypeError);
  assert.throws(() => encodeClient({ t: 'rendezvous', rid: 'a=b' }), TypeError);
});

test('what the server sends a phone, checked', () => {
  const joined = decodeServer('{"t":"pair.joined","peer_name":"Desk PC","ice_servers":[{"urls":["turn:x"],' +
    '"username":"1:a","credential":"c"},{"urls":["stun:y"],"username":null,"credential":null}],"v":1}');
  assert.deepEqual(joined, { t: 'pair.joined', peer_name: 'Desk PC', v: 1, ice_servers: [
    { urls: ['turn:x'], username: '1:a', credential: 'c' }, { urls: ['stun:y'], username: null, credential: null }] });
  assert.deepEqual(decodeServer('{"t":"relay","data":"AQID","v":1}').data, new Uint8Array([1, 2, 3]));
  assert.deepEqual(decodeServer('{"t":"pair.info","name":"PC","expires_at":17.5,"v":1}'),
    { t: 'pair.info', name: 'PC', expires_at: 17.5, v: 1 });
  assert.equal(decodeServer('{"t":"error","code":"token_used","message":"m","v":1}').code, 'token_used');
  for (const input of ['{"t":"pair.created","token":"x"}', '{"t":"pair.joined","peer_name":"P","ice_servers":[{"urls":"x"}]}',
    '{"t":"pair.joined","peer_name":"P","ice_servers":[{"urls":[],"extra":1}]}', '{"t":"relay","data":"A"}',
    '{"t":"peer.left","x":1}', '{"t":"error","code":"what","message":""}']) {
    assert.throws(() => decodeServer(input), refused('bad_message'), input);
  }
});
