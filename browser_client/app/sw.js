// The phone app's service worker, served as /sw.js (signaling/webapp.py) so that its scope, the
// whole origin, covers /p and /app/. Two jobs:
//
// * The app shell offline: /p and the files under /app/ are fetched from the network first
//   (the server answers `no-cache` with ETags, so an update reaches the phone at once) and
//   kept; when the network fails, the kept copy answers, and the app then says that the PC or
//   its server is unreachable. Nothing else is touched: the signaling API and its WebSocket
//   (and anything else on this origin) never go through this cache (WebSockets never go through
//   a service worker at all; other requests are not answered here, so the browser fetches them).
// * The Web Share Target (manifest.webmanifest `share_target`, W3C Web Share Target §2): the
//   system's Share sheet POSTs the shared files and text to /p?share=1 as multipart/form-data.
//   The POST is answered here, never by the server: the shared items are put in the Cache
//   Storage bucket SHARE_CACHE and the browser is sent on to /p?share=1 (303, a GET), where the
//   page takes them (store/shared.js) and sends them to the paired PC once connected.

const SHELL_CACHE = 'peerbeam-shell-v1';
const SHARE_CACHE = 'peerbeam-share';
/** Everything the page loads; tests/unit/test_webapp_shell.py holds this list to the app's files. */
const SHELL = [
  '/p',
  '/app/app.js', '/app/boot.js', '/app/icon.svg', '/app/icons/icon-192.png', '/app/icons/icon-512.png',
  '/app/main.js', '/app/manifest.webmanifest', '/app/style.css', '/app/vendor/noble.js', '/app/vendor/yjs.js',
  '/app/core/binding.js', '/app/core/bytes.js', '/app/core/card.js', '/app/core/channel.js', '/app/core/codec.js',
  '/app/core/errors.js', '/app/core/frames.js', '/app/core/kdf.js', '/app/core/link.js', '/app/core/noise.js',
  '/app/core/noise_cipher.js', '/app/core/path.js', '/app/core/reader.js', '/app/core/sdp.js',
  '/app/core/secure_session.js', '/app/core/shake.js', '/app/core/signals.js', '/app/core/sync_doc.js',
  '/app/core/sync_wire.js', '/app/core/transfer.js', '/app/core/urlsplit.js', '/app/core/wire.js',
  '/app/net/dialogue.js', '/app/net/establish.js', '/app/net/files.js', '/app/net/meet.js', '/app/net/pages.js',
  '/app/net/peer_session.js', '/app/net/rtc_link.js', '/app/net/signal_socket.js', '/app/net/sync.js',
  '/app/net/sync_readers.js', '/app/net/timing.js',
  '/app/store/db.js', '/app/store/held_key.js', '/app/store/pairings.js', '/app/store/received.js',
  '/app/store/shared.js', '/app/store/sync.js',
  '/app/ui/cards.js', '/app/ui/dom.js', '/app/ui/reader.js', '/app/ui/reader_blocks.js', '/app/ui/reader_panels.js',
  '/app/ui/reader_scroll.js', '/app/ui/reader_sheets.js', '/app/ui/reader_text.js', '/app/ui/screens.js', '/app/ui/shake.js', '/app/ui/sync_entry.js', '/app/ui/transfers.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== SHELL_CACHE && name !== SHARE_CACHE) await caches.delete(name);
    }
    // Take the page that registered us, so that its next reload already works offline.
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === 'POST' && url.pathname === '/p') {
    event.respondWith(receiveShare(request));
    return;
  }
  if (request.method === 'GET' && (url.pathname === '/p' || url.pathname.startsWith('/app/'))) {
    event.respondWith(networkFirst(request, url));
  }
  // Anything else (the signaling API, /sw.js itself): not answered here.
});

/** @param {Request} request @param {URL} url */
async function networkFirst(request, url) {
  // /p?share=1 and /p are the same page: one entry.
  const key = url.pathname === '/p' ? '/p' : url.pathname;
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (err) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw err;
  }
}

/** The Share sheet's POST: keep what was shared, then show the page. @param {Request} request */
async function receiveShare(request) {
  const form = await request.formData();
  await caches.delete(SHARE_CACHE); // one share at a time: an older, unsent one is replaced
  const cache = await caches.open(SHARE_CACHE);
  let n = 0;
  for (const file of form.getAll('files')) {
    if (typeof file === 'string') continue;
    await cache.put(`/share/file/${n}`, new Response(file, { headers: {
      'Content-Type': file.type || 'application/octet-stream',
      'X-Name': encodeURIComponent(file.name || `shared-${n}`),
    } }));
    n += 1;
  }
  // Apps put a shared link in `url`, or in `text`, or both; the title goes first.
  const parts = ['title', 'text', 'url'].map((name) => form.get(name)).filter((v) => typeof v === 'string' && v.trim());
  const text = [...new Set(parts)].join('\n');
  if (text) await cache.put('/share/text', new Response(text, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } }));
  return Response.redirect('/p?share=1', 303);
}
