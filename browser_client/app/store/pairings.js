// What this browser remembers (DESIGN "Pairing" step 6, "Reconnect"): its identity key and one
// pairing record per PC, in IndexedDB.
//
// Key storage, decided once when the identity is made:
// * in a secure context (HTTPS, localhost) whose WebCrypto has X25519, a non-extractable
//   CryptoKey (held_key.js): IndexedDB stores the key object, and no script can read its bytes;
// * elsewhere — plain HTTP on a LAN, served by the agent: no crypto.subtle at all — raw bytes,
//   which the JS Noise core (@noble) uses directly.
// The pair secret is raw bytes in both: the rendezvous id, the reconnect psk and the binding
// keys are HKDF outputs the JS core computes from it. IndexedDB is private to this origin.

import { bytesToHex } from '../core/bytes.js';
import { x25519 } from '../vendor/noble.js';
import { openDatabase, request } from './db.js';
import { HeldKey, canHoldKeys } from './held_key.js';

/**
 * @typedef {object} PairingRecord the port of crypto/records.py PairingRecord
 * @property {string} id the PC's public key, hex: the record's key
 * @property {string} peerName
 * @property {Uint8Array} peerKey the PC's long-term X25519 public key
 * @property {Uint8Array} pairSecret HKDF(chaining key, "pair")
 * @property {'initiator' | 'responder'} role ours in the pairing handshake, kept for reconnects
 * @property {string} server the signaling origin that paired us
 * @property {number} pairedAt POSIX seconds
 * @property {number} lastSeen POSIX seconds
 */

/**
 * @typedef {object} Identity
 * @property {Uint8Array | HeldKey} key what the Noise core takes as our static key
 * @property {Uint8Array} publicKey
 * @property {'raw' | 'webcrypto'} storage how the private key is kept
 */

export class Store {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this.db = db;
  }

  static async open() {
    return new Store(await openDatabase());
  }

  /** This browser's identity, made on first use. @returns {Promise<Identity>} */
  async identity() {
    const saved = await request(this.db, 'identity', 'readonly', (s) => s.get('self'));
    // CryptoKey itself is [SecureContext]: the name does not even exist over plain HTTP.
    const held = globalThis.CryptoKey !== undefined && saved?.privateKey instanceof globalThis.CryptoKey;
    if (held && saved.publicKey instanceof Uint8Array) {
      return { key: new HeldKey(saved.privateKey, saved.publicKey), publicKey: saved.publicKey, storage: 'webcrypto' };
    }
    if (saved?.privateKey instanceof Uint8Array && saved.privateKey.length === 32) {
      return { key: saved.privateKey, publicKey: x25519.getPublicKey(saved.privateKey), storage: 'raw' };
    }
    if (await canHoldKeys()) {
      const key = await HeldKey.generate();
      await request(this.db, 'identity', 'readwrite', (s) =>
        s.put({ privateKey: key.privateKey, publicKey: key.publicKey }, 'self'));
      return { key, publicKey: key.publicKey, storage: 'webcrypto' };
    }
    const privateKey = x25519.utils.randomSecretKey();
    await request(this.db, 'identity', 'readwrite', (s) => s.put({ privateKey }, 'self'));
    return { key: privateKey, publicKey: x25519.getPublicKey(privateKey), storage: 'raw' };
  }

  /** @returns {Promise<PairingRecord[]>} newest pairing first */
  async records() {
    /** @type {PairingRecord[]} */
    const all = await request(this.db, 'pairings', 'readonly', (s) => s.getAll());
    return all.sort((a, b) => b.pairedAt - a.pairedAt);
  }

  /** @param {Omit<PairingRecord, 'id'>} record */
  async put(record) {
    const full = { ...record, id: bytesToHex(record.peerKey) };
    await request(this.db, 'pairings', 'readwrite', (s) => s.put(full));
    return /** @type {PairingRecord} */ (full);
  }

  /** @param {PairingRecord} record @param {Partial<PairingRecord>} change */
  async update(record, change) {
    return this.put({ ...record, ...change });
  }

  /** @param {PairingRecord} record */
  async remove(record) {
    await request(this.db, 'pairings', 'readwrite', (s) => s.delete(record.id));
  }
}
