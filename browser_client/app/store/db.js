// IndexedDB, the browser's durable store, behind four promises. One database, "peerbeam",
// with two object stores: "identity" (this browser's long-term key) and "pairings" (one
// record per paired PC, keyed by the PC's public key in hex).

const NAME = 'peerbeam';
const VERSION = 1;

/** @returns {Promise<IDBDatabase>} */
export function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(NAME, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('identity')) db.createObjectStore('identity');
      if (!db.objectStoreNames.contains('pairings')) db.createObjectStore('pairings', { keyPath: 'id' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the database is held open by another tab'));
  });
}

/**
 * One request in its own transaction, as a promise of its result.
 * @param {IDBDatabase} db
 * @param {string} store
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest} act
 * @returns {Promise<any>}
 */
export function request(db, store, mode, act) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const req = act(tx.objectStore(store));
    let result;
    req.onsuccess = () => {
      result = req.result;
    };
    // Resolved on commit, not on success: a write is durable only then.
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}
