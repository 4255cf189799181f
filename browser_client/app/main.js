// The phone app's entry: read the fragment boot.js took from the address bar, then either
// start a pairing from it, or reconnect to the PC this browser is paired with, or say how to
// start.

import { parseLink } from './core/link.js';
import { App } from './app.js';
import { Store } from './store/pairings.js';
import { arrivedFromShare, takeShared } from './store/shared.js';
import { Ui } from './ui/screens.js';

/** The fragment boot.js saved, read once. */
function takeFragment() {
  const fragment = /** @type {{peerbeamFragment?: string}} */ (window).peerbeamFragment ?? '';
  delete (/** @type {{peerbeamFragment?: string}} */ (window)).peerbeamFragment;
  return fragment;
}

/** The offline app shell and the share target (sw.js); secure contexts only, so not over
 * plain HTTP on a LAN, where the page works as before. */
function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' })
    .catch((err) => console.info(`[app] no offline app shell: ${err}`));
}

async function main() {
  // A new link opened in this same tab changes only the fragment: no new page load, so boot.js
  // would not see it. Load the page again; boot.js then takes the fragment as usual.
  window.addEventListener('hashchange', () => {
    if (location.hash) location.reload();
  });
  const ui = new Ui();
  const fragment = takeFragment();
  let store;
  try {
    store = await Store.open();
  } catch (err) {
    ui.failure({ kind: 'broken', message: `This browser cannot store the pairing (${err}). Private browsing may block it.` });
    return;
  }
  registerServiceWorker();
  const app = new App(ui, store, location.origin);
  if (arrivedFromShare()) {
    // Taken once: a reload of this address must not send the same items again.
    history.replaceState(null, '', location.pathname);
    app.shareWhenConnected(takeShared());
  }
  if (!fragment) {
    await app.home();
    return;
  }
  let link;
  try {
    // The link as it was scanned: this page's address with the fragment put back.
    link = parseLink(`${location.origin}${location.pathname}${fragment}`);
  } catch (err) {
    ui.failure({ kind: 'damaged', message: /** @type {Error} */ (err).message });
    return;
  }
  await app.peek(link);
}

main();
