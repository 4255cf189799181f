// The CRDT of page sync (docs/SYNC.md), bundled by `npm run build` into app/vendor/yjs.js:
// yjs, y-protocols' sync messages and lib0's encoders in one file, so the page holds exactly
// one copy of yjs (two copies break its `instanceof` checks).
export * as Y from 'yjs';
export * as syncProtocol from 'y-protocols/sync';
export * as encoding from 'lib0/encoding';
export * as decoding from 'lib0/decoding';
