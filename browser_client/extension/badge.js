// The only UI: the toolbar badge and its tooltip. Per-tab for a beam's result, global for the
// state of the link to the agent (a per-tab badge wins over the global one in that tab).

const GREEN = "#1a7f37";
const RED = "#cf222e";
const GREY = "#6e7781";

function show(text, color, title, tabId) {
  const where = tabId === undefined ? {} : { tabId };
  chrome.action.setBadgeText({ ...where, text });
  if (color) chrome.action.setBadgeBackgroundColor({ ...where, color });
  chrome.action.setTitle({ ...where, title });
}

/** The link to the agent changed: connected, asleep, gone, not installed. */
export function showLink(state) {
  if (!state.ok) {
    show("!", RED, `peerbeam: ${state.message} (${state.code})`);
  } else if (state.active === false) {
    show("zz", GREY, "peerbeam is asleep. Click to wake it and beam this page.");
  } else {
    const names = (state.devices || []).map((d) => d.name).join(", ");
    show("", null, names ? `Beam this page to ${names} (peerbeam)`
      : "peerbeam: no phone is connected. Pair one with `peerbeam agent`.");
  }
}

export function showBusy(tabId) {
  show("…", GREY, "peerbeam: beaming this page…", tabId);
}

export function showBeamed(tabId, reply) {
  const images = reply.thumbnails === 1 ? "1 image" : `${reply.thumbnails ?? 0} images`;
  show("✓", GREEN, `Beamed to ${reply.name} (${images})`, tabId);
}

export function showFailed(tabId, code, message) {
  show("!", RED, `peerbeam could not beam this page: ${message} (${code})`, tabId);
}

const BLUE = "#0969da";
const ORANGE = "#bc4c00";

/** The tab is mirrored on the phone; `limited`: peerbeam may read it only until it navigates. */
export function showSyncing(tabId, { limited = false, name = "your phone" } = {}) {
  show("⇄", limited ? ORANGE : BLUE, limited
    ? `Mirroring this tab on ${name}. peerbeam may read only this site: once the tab goes to another `
      + `site, ${name} gets those pages from their address, and scrolling, find and highlights no longer `
      + "follow. Choose “Mirror this tab on my phone” again and allow access to sites to follow it anywhere (peerbeam)."
    : `Mirroring this tab on ${name} (peerbeam)`, tabId);
}

/** The mirrored tab went somewhere peerbeam may not read. */
export function showSyncNoAccess(tabId) {
  show("⇄", ORANGE, "peerbeam may not read this page: your phone shows it from its address, and scrolling, "
    + "find and highlights do not follow here. Choose “Mirror this tab on my phone” to allow it (peerbeam).", tabId);
}

/** The tab's own badge ends (text null: the global one shows again). */
export function clearTab(tabId) {
  try {
    chrome.action.setBadgeText({ tabId, text: null }).catch(() => {});
    chrome.action.setTitle({ tabId, title: "Beam this page to your phone (peerbeam)" }).catch(() => {});
  } catch {
    // a tab that is gone
  }
}
