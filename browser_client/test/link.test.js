// link.js against tests/vectors/link.json and against Python's answers for ~400 links around
// urlsplit's and ipaddress's corners (session.json "links"): same result, same sentence.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';

import { bytesToHex } from '../app/core/bytes.js';
import { PeerbeamError } from '../app/core/errors.js';
import { parseLink } from '../app/core/link.js';

const load = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), 'utf8'));
const V = load('link.json');
const S = load('session.json');

/** parseLink's answer in the vectors' shape. */
function outcome(url) {
  try {
    const link = parseLink(url);
    return { url, origin: link.origin, token: link.token, secret: bytesToHex(link.secret),
      agent_key: bytesToHex(link.agentKey) };
  } catch (err) {
    assert.ok(err instanceof PeerbeamError && err.code === 'bad_link', `not a bad_link error: ${err}`);
    return { url, error: err.message };
  }
}

for (const c of V.good) {
  test(`good link: ${c.origin}`, () => {
    assert.deepEqual(outcome(c.url), { url: c.url, origin: c.origin, token: c.token, secret: c.secret,
      agent_key: c.agent_key });
  });
}

for (const c of V.bad) {
  test(`bad link: ${c.why}`, () => {
    const result = outcome(c.url);
    assert.ok(result.error, 'parsed a bad link');
    assert.match(result.error, /pairing link.*\.$/);
  });
}

test('every recorded link gives what crypto/link.py gives, sentence included', () => {
  assert.ok(S.links.length > 300 && S.links.some((c) => !c.error));
  const differences = S.links.filter((c) => !isDeepStrictEqual(outcome(c.url), c));
  assert.deepEqual(differences.map((c) => ({ python: c, javascript: outcome(c.url) })), []);
});

test('a link is frozen and non-strings are refused', () => {
  const link = parseLink(V.good[0].url);
  assert.ok(Object.isFrozen(link));
  for (const value of [null, undefined, 42, {}]) {
    assert.throws(() => parseLink(value), (err) => err instanceof PeerbeamError && err.code === 'bad_link');
  }
});
