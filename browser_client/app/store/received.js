// Files received from the PC, streamed to IndexedDB as they arrive — never held whole in
// memory. IndexedDB works in every context the app runs in (OPFS needs a secure context, and
// the app also runs over plain HTTP on a LAN). Chunks are gathered into pieces of about 1 MiB,
// each stored as a Blob under [transfer id, piece number]; a finished file is one Blob made of
// those pieces, which the browser keeps on disk and reads only when the user saves it.
// A separate database from the pairings ("peerbeam"), so neither migrates the other.

const NAME = 'peerbeam-files';
const VERSION = 1;
const PIECE_BYTES = 1024 * 1024;

/** @returns {Promise<IDBDatabase>} */
function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(NAME, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('pieces'); // key [id, n] -> Blob
      db.createObjectStore('files', { keyPath: 'id' }); // complete files only
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** @param {IDBTransaction} tx */
function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** One file being received: append, then commit or discard. */
export class PartFile {
  /** @type {Uint8Array[]} */ #buffer = [];
  #buffered = 0;
  #pieces = 0;
  /** @type {Promise<unknown>} */ #writing = Promise.resolve();

  /** @param {IDBDatabase} db @param {string} id */
  constructor(db, id) {
    this.db = db;
    this.id = id;
  }

  /** Queue a chunk; pieces are written in order in the background. @param {Uint8Array} data */
  append(data) {
    this.#buffer.push(data);
    this.#buffered += data.length;
    if (this.#buffered >= PIECE_BYTES) this.#flush();
  }

  #flush() {
    if (this.#buffered === 0) return this.#writing;
    const blob = new Blob(this.#buffer);
    const key = [this.id, this.#pieces++];
    this.#buffer = [];
    this.#buffered = 0;
    this.#writing = this.#writing.then(() => {
      const tx = this.db.transaction('pieces', 'readwrite');
      tx.objectStore('pieces').put(blob, key);
      return done(tx);
    });
    return this.#writing;
  }

  /** How many bytes wait for IndexedDB: the receiver slows down if the disk lags. */
  get pending() {
    return this.#buffered;
  }

  /**
   * The verified file, with its name: stored as complete, returned as one disk-backed Blob.
   * @param {{name: string, mime: string | null, size: number, sha256: string}} meta
   * @returns {Promise<Blob>}
   */
  async commit(meta) {
    await this.#flush();
    const tx = this.db.transaction(['pieces', 'files'], 'readwrite');
    const range = IDBKeyRange.bound([this.id, 0], [this.id, Infinity]);
    const pieces = tx.objectStore('pieces').getAll(range);
    tx.objectStore('files').put({ id: this.id, ...meta, pieces: this.#pieces, receivedAt: Date.now() });
    await done(tx);
    return new Blob(/** @type {Blob[]} */ (pieces.result), { type: meta.mime ?? 'application/octet-stream' });
  }

  /** Cancelled or failed: nothing of it stays. */
  async discard() {
    this.#buffer = [];
    this.#buffered = 0;
    await this.#writing.catch(() => {});
    const tx = this.db.transaction(['pieces', 'files'], 'readwrite');
    tx.objectStore('pieces').delete(IDBKeyRange.bound([this.id, 0], [this.id, Infinity]));
    tx.objectStore('files').delete(this.id);
    await done(tx);
  }
}

export class Received {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  static async open() {
    return new Received(await open());
  }

  /** A fresh part for this transfer id (any leftover of an earlier attempt removed first). @param {string} id */
  async begin(id) {
    const part = new PartFile(this.db, id);
    await part.discard();
    return part;
  }
}
