// The page-sync document and its reader views, kept in IndexedDB (docs/SYNC.md "Who holds
// what": the phone holds one Y.Doc per pairing), so that a reload, a closed tab or a lost
// connection loses nothing: edits made meanwhile merge when the PC is back.
//
// A database of its own ("peerbeam-sync"), so that neither it nor the pairings migrate the
// other. Two object stores:
// * "docs": one record per pairing (key: the PC's public key in hex, PairingRecord.id):
//   {pairing, doc: the DocId, state: the whole Y.Doc as one update, viewing: the reader view was
//   on screen};
// * "readers": key [pairing, card id] -> {pairing, card, reader (reader.js JSON), images:
//   [{source, mime, width, height, blob}], savedAt}; at most MAX_READERS per pairing.

const NAME = 'peerbeam-sync';
const VERSION = 1;
export const MAX_READERS = 8;

/**
 * @typedef {{pairing: string, doc: string, state: Uint8Array, viewing: boolean}} SavedDoc
 * @typedef {{source: string | null, mime: string, width: number, height: number, blob: Blob}} SavedImage
 * @typedef {{pairing: string, card: string, reader: any, images: SavedImage[], savedAt: number}} SavedReader
 */

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(NAME, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('docs', { keyPath: 'pairing' });
      db.createObjectStore('readers', { keyPath: ['pairing', 'card'] });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the sync database is held open by another tab'));
  });
}

/** Resolves when the transaction commits: only then is a write durable. @param {IDBTransaction} tx */
function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** @template T @param {IDBRequest<T>} request @returns {Promise<T>} */
function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** @param {string} pairing */
function readersOf(pairing) {
  return IDBKeyRange.bound([pairing, ''], [pairing, '\uffff']);
}

export class SyncStore {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  static async open() {
    return new SyncStore(await open());
  }

  /** @param {string} pairing @returns {Promise<SavedDoc | null>} */
  async load(pairing) {
    const tx = this.db.transaction('docs', 'readonly');
    const saved = await result(tx.objectStore('docs').get(pairing));
    return saved && saved.state instanceof Uint8Array && typeof saved.doc === 'string' ? saved : null;
  }

  /** @param {SavedDoc} saved */
  async save(saved) {
    const tx = this.db.transaction('docs', 'readwrite');
    tx.objectStore('docs').put(saved);
    await done(tx);
  }

  /** The session is over (or the pairing forgotten): its document and reader views go. @param {string} pairing */
  async drop(pairing) {
    const tx = this.db.transaction(['docs', 'readers'], 'readwrite');
    tx.objectStore('docs').delete(pairing);
    tx.objectStore('readers').delete(readersOf(pairing));
    await done(tx);
  }

  /** Keep a reader view; the oldest beyond MAX_READERS go. @param {SavedReader} saved */
  async putReader(saved) {
    const tx = this.db.transaction('readers', 'readwrite');
    const store = tx.objectStore('readers');
    store.put(saved);
    const all = /** @type {SavedReader[]} */ (await result(store.getAll(readersOf(saved.pairing))));
    all.sort((a, b) => b.savedAt - a.savedAt);
    for (const old of all.slice(MAX_READERS)) store.delete([old.pairing, old.card]);
    await done(tx);
  }

  /** The card ids of the reader views kept for a pairing. @param {string} pairing @returns {Promise<string[]>} */
  async readerCards(pairing) {
    const tx = this.db.transaction('readers', 'readonly');
    const keys = /** @type {[string, string][]} */ (await result(tx.objectStore('readers').getAllKeys(readersOf(pairing))));
    return keys.map(([, card]) => card);
  }

  /** @param {string} pairing @param {string} card @returns {Promise<SavedReader | null>} */
  async reader(pairing, card) {
    const tx = this.db.transaction('readers', 'readonly');
    return (await result(tx.objectStore('readers').get([pairing, card]))) ?? null;
  }
}
