// The only crypto the protocol core uses, bundled by `npm run build` into app/vendor/noble.js.
// The browser loads that one file: no CDN, no bare specifiers, and it works in an insecure
// context (plain HTTP on a LAN), where WebCrypto's `subtle` is missing; noble needs only
// `crypto.getRandomValues`, which every context has.
export { x25519 } from '@noble/curves/ed25519.js';
export { sha256 } from '@noble/hashes/sha2.js';
export { hmac } from '@noble/hashes/hmac.js';
export { hkdf } from '@noble/hashes/hkdf.js';
export { gcm } from '@noble/ciphers/aes.js';
