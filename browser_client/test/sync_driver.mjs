// The JS side of the Python <-> JS convergence test (pycrdt against yjs). Not a test itself: a
// process the Python test starts (`node test/sync_driver.mjs`) and talks to.
//
// One JSON command per line on stdin, one JSON reply per line on stdout, in order. Every
// command names its document ("doc"); a name not seen before makes a fresh SyncDoc (gc on, or
// off when that first command carries the optional "gc": false; bench/sync.py measures both).
// Bytes are standard base64.
//
//   {"doc", "op": "<snake_case op of docs/SYNC.md>", "args": [...]}  -> {"ok": true} | {"ok": false, "error"}
//   {"doc", "cmd": "updates"}            -> {"updates": [b64, ...]}  every local update since the last call
//   {"doc", "cmd": "apply", "update": b64} -> {"ok": true} | {"ok": false, "error"}
//   {"doc", "cmd": "state"}              -> {"state": {...}}
//   {"doc", "cmd": "sv"}                 -> {"sv": b64}
//   {"doc", "cmd": "encode", "sv": b64 | null} -> {"update": b64}   whole state, or the diff against sv
//   {"cmd": "reset"}                     -> {"ok": true}  drops every document
//
// Anything else, or a line that is not JSON, -> {"ok": false, "error"}.

import { createInterface } from 'node:readline';

import { SyncDoc } from '../app/core/sync_doc.js';

/** docs/SYNC.md's operation names (Python) -> SyncDoc's methods. */
const OPS = Object.freeze({
  open_tab: 'openTab', close_tab: 'closeTab', navigate: 'navigate', set_active: 'setActive', scroll: 'scroll',
  find: 'find', add_highlight: 'addHighlight', edit_highlight: 'editHighlight', delete_highlight: 'deleteHighlight',
  add_bookmark: 'addBookmark', rename_bookmark: 'renameBookmark', delete_bookmark: 'deleteBookmark',
  set_follow: 'setFollow', set_reader: 'setReader',
});

/** @type {Map<string, {sync: SyncDoc, updates: Uint8Array[]}>} */
const docs = new Map();

const b64 = (/** @type {Uint8Array} */ bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (/** @type {unknown} */ text) => {
  if (typeof text !== 'string') throw new TypeError('expected base64 text');
  return new Uint8Array(Buffer.from(text, 'base64'));
};

/** @param {string} name @param {boolean} gc only for a document not seen before */
function docNamed(name, gc = true) {
  let entry = docs.get(name);
  if (entry === undefined) {
    const sync = new SyncDoc({ gc });
    entry = { sync, updates: [] };
    const updates = entry.updates;
    sync.onLocalUpdate((update) => updates.push(update));
    docs.set(name, entry);
  }
  return entry;
}

/** @param {any} command @returns {object} */
function run(command) {
  if (command?.cmd === 'reset') {
    for (const { sync } of docs.values()) sync.destroy();
    docs.clear();
    return { ok: true };
  }
  if (typeof command?.doc !== 'string') return { ok: false, error: 'no "doc" named' };
  const entry = docNamed(command.doc, command.gc !== false);
  if (command.op !== undefined) {
    const method = Object.hasOwn(OPS, command.op) ? OPS[command.op] : null;
    if (method === null) return { ok: false, error: `unknown op ${command.op}` };
    if (!Array.isArray(command.args)) return { ok: false, error: 'args must be a list' };
    try {
      /** @type {any} */ (entry.sync)[method](...command.args);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: describe(err) };
    }
  }
  switch (command.cmd) {
    case 'updates':
      return { updates: entry.updates.splice(0).map(b64) };
    case 'apply':
      try {
        entry.sync.applyUpdate(unb64(command.update));
        return { ok: true };
      } catch (err) {
        return { ok: false, error: describe(err) };
      }
    case 'state':
      return { state: entry.sync.state() };
    case 'sv':
      return { sv: b64(entry.sync.stateVector()) };
    case 'encode':
      try {
        return { update: b64(command.sv === null || command.sv === undefined ? entry.sync.encodeState() : entry.sync.encodeDiff(unb64(command.sv))) };
      } catch (err) {
        return { ok: false, error: describe(err) };
      }
    default:
      return { ok: false, error: `unknown command ${command.cmd}` };
  }
}

/** @param {unknown} err */
function describe(err) {
  const { code, message } = /** @type {{code?: string, message?: string}} */ (err);
  return code ? `${code}: ${message}` : `internal: ${message ?? String(err)}`;
}

// `node --test test/` runs every module under a test/ folder: this one is not a test, and would
// wait on stdin for ever there.
if (process.env.NODE_TEST_CONTEXT !== undefined) process.exit(0);

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let reply;
  try {
    reply = run(JSON.parse(line));
  } catch (err) {
    reply = { ok: false, error: `bad command: ${describe(err)}` };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
});
