// What another app shared to peerbeam (the Web Share Target): sw.js keeps the items of the
// Share sheet's POST in Cache Storage and sends the browser to /p?share=1; the page takes them
// from there once, here, and sends them to the PC when connected.

const SHARE_CACHE = 'peerbeam-share';

/**
 * @typedef {object} Shared
 * @property {File[]} files
 * @property {string} text the title, text and link that came with them, one per line
 */

/** Whether this page load is the end of a share (and not, say, a reload of it). */
export function arrivedFromShare() {
  return new URLSearchParams(location.search).get('share') === '1';
}

/**
 * Take what was shared, and forget it (a reload must not send it again).
 * @returns {Promise<Shared>}
 */
export async function takeShared() {
  /** @type {Shared} */
  const shared = { files: [], text: '' };
  if (!('caches' in self) || !(await caches.has(SHARE_CACHE))) return shared;
  const cache = await caches.open(SHARE_CACHE);
  for (const request of await cache.keys()) {
    const response = /** @type {Response} */ (await cache.match(request));
    if (new URL(request.url).pathname === '/share/text') {
      shared.text = await response.text();
    } else {
      const name = decodeURIComponent(response.headers.get('X-Name') ?? 'shared');
      shared.files.push(new File([await response.blob()], name, { type: response.headers.get('Content-Type') ?? '' }));
    }
  }
  await caches.delete(SHARE_CACHE);
  return shared;
}
