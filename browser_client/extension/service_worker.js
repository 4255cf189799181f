// peerbeam's MV3 service worker: the toolbar button beams the tab; the agent may pull the
// active tab ("capture") when the phone asks for the page the PC shows now; page sync
// (docs/SYNC.md) lives in sync.js.
// Listeners are registered synchronously at the top level, as MV3 requires for wake-ups.

import { capturePage } from "./capture.js";
import { showBeamed, showBusy, showFailed, showLink } from "./badge.js";
import { NativeLink } from "./native_link.js";
import { installSync } from "./sync.js";

const HOST_NAME = "org.peerbeam.agent";
// The agent fetches every image and makes thumbnails before it answers.
const BEAM_TIMEOUT_MS = 90_000;

const link = new NativeLink(HOST_NAME);
const results = [];
const resultWaiters = [];

function record(result) {
  results.push(result);
  for (const waiter of resultWaiters.splice(0)) waiter();
}

async function beam(tab) {
  showBusy(tab.id);
  let page;
  try {
    page = await capturePage(tab, { screenshot: link.state.screenshot === true });
  } catch (err) {
    showFailed(tab.id, err.code || "no_page", err.message);
    record({ ok: false, code: err.code || "no_page", message: err.message });
    return;
  }
  // to: null lets the agent choose (the one connected phone, or the last one used).
  const reply = await link.request({ type: "beam", to: null, page }, BEAM_TIMEOUT_MS);
  if (reply.ok) showBeamed(tab.id, reply);
  else showFailed(tab.id, reply.code, reply.message);
  record(reply);
}

async function activeTab() {
  const [focused] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
  if (focused) return focused;
  const [any] = await chrome.tabs.query({ active: true });
  return any ?? null;
}

// A pull: no user gesture, so images come only from a tab the user clicked the button on
// (activeTab lasts until it navigates); otherwise URL and title, which `tabs` allows.
link.handle("capture", async (msg) => {
  const tab = await activeTab();
  if (!tab) return { ok: false, code: "no_page", message: "No browser tab is open on the PC." };
  const page = await capturePage(tab, {
    screenshot: msg.screenshot === true || link.state.screenshot === true,
    domRequired: false,
  });
  return { ok: true, page };
});

link.onState = showLink;
chrome.action.onClicked.addListener((tab) => { beam(tab); });
const sync = installSync(link);
link.connect();

// For the devtools console and the browser tests: the link and every beam's result.
globalThis.peerbeam = {
  link,
  results,
  sync,
  /** "Mirror this tab on my phone" for tab `tabId` (the action menu's item, without its gesture). */
  mirror: (tabId) => sync.mirror(tabId),
  startedAt: Date.now(), // a restarted worker shows a new value
  /** Resolves once `count` beams have finished (ok or not). */
  waitForResults(count) {
    return new Promise((resolve) => {
      const check = () => (results.length >= count ? resolve(results.slice(0, count)) : resultWaiters.push(check));
      check();
    });
  },
};
