// The worker's half of page sync (docs/SYNC.md "Extension <-> agent"). The agent holds the
// shared document; this bridge reports what happens in the synced window (`sync.op`), applies
// the states the agent sends (`sync.state`) to the real tabs, answers `sync.capture`, sends a
// new reader view after the synced tab navigates (`sync.page`), and starts a session from the
// action's context menu (`sync.begin`). The decisions are in sync_plan.js; this is the glue.
// Every chrome listener is added synchronously by installSync (MV3 wake-ups need that), and
// every handler runs in one queue, so that an event our own change caused is seen after the
// change is recorded (that is how echoes are recognised).

import { capturePage } from "./capture.js";
import { clearTab, showFailed, showSyncNoAccess, showSyncing } from "./badge.js";
import { BookmarkMirror, listenBookmarks } from "./bookmark_mirror.js";
import {
  HOSTS, PENDING_MS, chromeTabOf, follows, isHttp, keyOfTab, planContent, planTabs, randomId,
} from "./sync_plan.js";

const CONTENT_FILES = ["vendor/readability.js", "sync_content.js"];
const PORT_NAME = "peerbeam-sync";
const STORE = "peerbeamSync"; // chrome.storage.session: survives a stopped worker, not the browser
const BEGIN_TIMEOUT_MS = 90_000; // the agent captures the tab and builds the reader card first
const MIRROR_WINDOW_MS = 120_000; // a capture within this time of "Mirror" is for that tab
// activeTab's grant can reach the renderer after the click's handler runs (capture.js).
const GRANT_WAIT_MS = 500;
const LOG = 200;
const MENU = {
  mirror: "peerbeam-mirror", stop: "peerbeam-stop", follow: "peerbeam-follow", highlight: "peerbeam-highlight",
};
const NO_ACCESS = "peerbeam may not read this tab. Click the peerbeam button on it, or choose “Mirror this "
  + "tab on my phone” in the button's menu, then try again.";

const fresh = () => ({
  doc: null, state: null, stateAt: 0,
  windowId: null, tabId: null, // the synced window and its tab
  map: {}, // document key -> chrome tab id, for tabs the phone opened
  pending: null, // {tabId, windowId, at}: the tab the last capture reported
  mirror: null, // {tabId, windowId, at}: the tab the user asked to mirror
});

export function installSync(link) {
  let session = fresh();
  const ready = chrome.storage.session.get(STORE).then((v) => { session = { ...fresh(), ...(v[STORE] ?? {}) }; },
    () => {});
  const ports = new Map(); // tab id -> the content script's port
  const shown = new Map(); // tab id -> {find, highlights}: what that tab was last given
  const reported = new Map(); // document key -> {url, title} we last reported for that tab
  const own = { active: [], highlights: new Map() }; // our recent writes the states may still lack
  const sent = [];
  const errors = [];
  const results = [];
  const counters = { states: 0, captures: 0, ops: 0, pages: 0 };

  let chain = Promise.resolve();
  const serial = (task) => {
    const run = chain.then(() => ready).then(task).catch((err) => {
      errors.push(String(err?.message || err));
      if (errors.length > LOG) errors.shift();
    });
    chain = run;
    return run;
  };
  const save = () => chrome.storage.session.set({ [STORE]: session });
  const post = (message) => {
    sent.push(message);
    if (sent.length > LOG) sent.shift();
    try {
      link.send(message);
    } catch (err) {
      errors.push(`not sent: ${err.message}`);
    }
  };
  const sendOp = (op, args) => {
    if (!session.doc) return;
    counters.ops += 1;
    post({ type: "sync.op", doc: session.doc, op, args });
  };
  const bookmarks = new BookmarkMirror(sendOp);

  // ---- the tab and its content script ---------------------------------------------------------

  async function inject(tabId, graceMs = 0) {
    const deadline = Date.now() + graceMs;
    for (;;) {
      try {
        await chrome.scripting.executeScript({ target: { tabId }, files: CONTENT_FILES });
        return;
      } catch (err) {
        if (Date.now() >= deadline) throw err;
        await new Promise((done) => setTimeout(done, 20));
      }
    }
  }

  async function inTab(tabId, name, ...args) {
    const [injection] = await chrome.scripting.executeScript({
      target: { tabId },
      func: (fn, list) => globalThis.peerbeamSync[fn](...list),
      args: [name, args],
    });
    return injection?.result;
  }

  /** A message for the tab's content script: by its port, else by injecting (if allowed). */
  async function deliver(tabId, message) {
    const port = ports.get(tabId);
    if (port) {
      try {
        port.postMessage(message);
        return true;
      } catch {
        ports.delete(tabId);
      }
    }
    try {
      await inject(tabId);
      await inTab(tabId, "receive", message);
      return true;
    } catch {
      return false; // no access to the tab
    }
  }

  const tabOrNull = (tabId) => (tabId == null ? Promise.resolve(null) : chrome.tabs.get(tabId).catch(() => null));

  async function windowTabs(windowId) {
    const tabs = await chrome.tabs.query({ windowId });
    return tabs.filter((t) => isHttp(t.url)).map((t) => ({
      key: keyOfTab(t.id, session.map), url: t.url, title: (t.title || t.url).slice(0, 1024), order: t.index,
    }));
  }

  async function mayRead(url) {
    try {
      return await chrome.permissions.contains({ origins: [`${new URL(url).origin}/*`] });
    } catch {
      return false;
    }
  }

  /** The highlights of the document plus ours that no state has shown yet. */
  function effectiveState() {
    const state = session.state;
    if (!state) return null;
    const highlights = { ...state.highlights };
    for (const [id, { record, at }] of own.highlights) {
      if (Object.hasOwn(state.highlights ?? {}, id) || (session.stateAt - at >= PENDING_MS && session.stateAt > at)) {
        own.highlights.delete(id); // shown by a state, or deleted by the other side meanwhile
      } else {
        highlights[id] = record;
      }
    }
    return { ...state, highlights };
  }

  /** Give the synced tab what changed for it between `prev` and the current state. */
  async function pushContent(prev) {
    const tab = await tabOrNull(session.tabId);
    const next = effectiveState();
    if (!tab || !next) return;
    const was = shown.get(tab.id) ?? {};
    const message = planContent({ prev, next, key: keyOfTab(tab.id, session.map), url: tab.url, shown: was });
    if (!message || !(await deliver(tab.id, message))) return;
    shown.set(tab.id, {
      find: message.find ? `${message.find.query}\0${message.find.match}` : was.find,
      highlights: message.highlights ? JSON.stringify(message.highlights) : was.highlights,
    });
  }

  /**
   * The synced tab is `tabId` now (a session started, the user switched tabs, it navigated):
   * inject the content script and, unless the document already has this page's reader view,
   * send it (sync.page) — with reader null when peerbeam may not read the page, so that the
   * agent fetches it.
   */
  async function attach(tabId, { navigated = false } = {}) {
    const tab = await tabOrNull(tabId);
    if (!tab || !isHttp(tab.url) || !session.doc) return;
    const key = keyOfTab(tabId, session.map);
    const needPage = navigated || session.state?.reader?.[key]?.url !== tab.url;
    let reader = null;
    let readable = true;
    try {
      await inject(tabId);
      if (needPage) reader = await inTab(tabId, "extract");
    } catch {
      readable = false;
    }
    // Host access follows navigations; activeTab alone ends at the next one (the badge says so).
    if (readable) showSyncing(tabId, { limited: !(await mayRead(tab.url)) });
    else showSyncNoAccess(tabId);
    if (!needPage) return;
    let page;
    try {
      page = await capturePage(tab, { domRequired: false });
    } catch {
      page = { url: tab.url, title: tab.title || "", images: [], screenshot: null };
    }
    page.reader = reader;
    counters.pages += 1;
    post({ type: "sync.page", doc: session.doc, tab_key: key, page });
  }

  // ---- agent -> extension ---------------------------------------------------------------------

  async function onState(message) {
    counters.states += 1;
    if (!message.doc || !message.state) return endSession();
    const now = Date.now();
    const first = session.doc !== message.doc;
    const prev = first ? null : session.state;
    const adopt = session.pending && now - session.pending.at < MIRROR_WINDOW_MS ? session.pending : null;
    const synced = session.tabId;
    if (first && !adopt) {
      // A session this worker did not capture (it restarted meanwhile): the active tab's window.
      const id = message.state.active ? chromeTabOf(message.state.active, session.map) : null;
      const tab = (await tabOrNull(id)) ?? (await chrome.tabs.query({ active: true, lastFocusedWindow: true }))[0];
      session.windowId = tab?.windowId ?? null;
      session.tabId = tab?.id ?? null;
    } else if (adopt) {
      session.windowId = adopt.windowId;
      session.tabId = adopt.tabId;
    }
    session.pending = null;
    session.doc = message.doc;
    session.state = message.state;
    session.stateAt = now;
    if (first) shown.clear();
    await save();
    const same = (root) => prev && JSON.stringify(prev[root]) === JSON.stringify(message.state[root]);
    const tabsChanged = !(same("tabs") && same("follow") && prev.active === message.state.active);
    // "PC follows phone" just came back on: catch up as on a first state (tabs the phone opened
    // meanwhile, its active tab, its last scroll).
    const followed = prev && follows(prev) ? prev : null;
    if (session.windowId != null && tabsChanged) {
      const tabs = await chrome.tabs.query({ windowId: session.windowId });
      own.active = own.active.filter((w) => now - w.at < PENDING_MS);
      const plan = planTabs({ prev: followed, next: message.state, tabs, map: session.map, ownActive: own.active, now });
      for (const action of plan) {
        await act(action);
      }
    }
    if (!same("bookmarks")) await bookmarks.reconcile({ doc: session.doc, prev, next: message.state, stateAt: now });
    if ((first || synced !== session.tabId) && session.tabId != null) {
      if (synced != null && synced !== session.tabId) clearTab(synced);
      await attach(session.tabId);
    }
    await pushContent(followed);
    updateMenus();
  }

  async function act(action) {
    try {
      if (action.do === "create") {
        const tab = await chrome.tabs.create({ windowId: session.windowId, url: action.url, active: false });
        session.map[action.key] = tab.id;
      } else if (action.do === "remove") {
        delete session.map[action.key];
        reported.delete(action.key);
        await chrome.tabs.remove(action.tabId);
      } else if (action.do === "navigate") {
        await chrome.tabs.update(action.tabId, { url: action.url });
      } else if (action.do === "activate") {
        await chrome.tabs.update(action.tabId, { active: true });
      }
    } catch (err) {
      errors.push(`${action.do}: ${err.message}`);
    }
    await save();
  }

  async function endSession() {
    for (const [tabId, port] of ports) {
      try { port.postMessage({ type: "stop" }); } catch { /* gone */ }
      clearTab(tabId);
    }
    if (session.tabId != null) clearTab(session.tabId);
    ports.clear();
    shown.clear();
    reported.clear();
    own.highlights.clear();
    session = fresh();
    await save();
    updateMenus();
  }

  async function captureTarget(key) {
    if (typeof key === "string") return tabOrNull(chromeTabOf(key, session.map));
    const mirror = session.mirror;
    if (mirror && Date.now() - mirror.at < MIRROR_WINDOW_MS) return tabOrNull(mirror.tabId);
    const [focused] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
    return focused ?? (await chrome.tabs.query({ active: true }))[0] ?? null;
  }

  async function onCapture(message) {
    counters.captures += 1;
    const tab = await captureTarget(message.tab);
    if (!tab) return { ok: false, code: "no_access", message: "No browser tab is open on the PC." };
    const [current] = await chrome.tabs.query({ active: true, windowId: tab.windowId });
    const about = {
      tab_key: keyOfTab(tab.id, session.map),
      tabs: await windowTabs(tab.windowId),
      active: current ? keyOfTab(current.id, session.map) : keyOfTab(tab.id, session.map),
    };
    if (!isHttp(tab.url)) {
      return { ok: false, code: "no_access", message: "peerbeam can mirror only http and https pages.", ...about };
    }
    let reader;
    try {
      await inject(tab.id, GRANT_WAIT_MS);
      reader = await inTab(tab.id, "extract");
    } catch {
      return { ok: false, code: "no_access", message: NO_ACCESS, ...about };
    }
    const page = await capturePage(tab, { screenshot: message.screenshot === true, domRequired: false });
    page.reader = reader;
    session.pending = { tabId: tab.id, windowId: tab.windowId, at: Date.now() };
    await save();
    return { ok: true, ...about, page };
  }

  // ---- the synced window -> sync.op -----------------------------------------------------------

  const inWindow = (windowId) => session.doc && session.windowId != null && windowId === session.windowId;
  const docTab = (key) => session.state?.tabs?.[key] ?? reported.get(key);

  function reportTab(tab) {
    if (!isHttp(tab.url)) return;
    const key = keyOfTab(tab.id, session.map);
    const title = (tab.title || tab.url).slice(0, 1024);
    const known = docTab(key);
    const last = reported.get(key);
    if (last && last.url === tab.url && last.title === title) return;
    if (!known) {
      sendOp("open_tab", { key, url: tab.url, title, order: tab.index, by: "pc" });
    } else if (known.url !== tab.url || known.title !== title) {
      sendOp("navigate", { key, url: tab.url, title, by: "pc" });
    } else {
      return;
    }
    reported.set(key, { url: tab.url, title });
  }

  chrome.tabs.onCreated.addListener((tab) => serial(async () => {
    if (!inWindow(tab.windowId) || Object.values(session.map).includes(tab.id)) return; // ours: the phone's tab
    reportTab({ ...tab, url: tab.pendingUrl || tab.url });
  }));

  chrome.tabs.onUpdated.addListener((tabId, change, tab) => serial(async () => {
    if (!inWindow(tab.windowId)) return;
    if (tab.status === "complete" && (change.url || change.title || change.status)) reportTab(tab);
    if (tabId === session.tabId && change.status === "complete") {
      // A new document: its content script says hello, and then gets find and highlights.
      shown.delete(tabId);
      await attach(tabId, { navigated: true });
    }
  }));

  chrome.tabs.onRemoved.addListener((tabId, info) => serial(async () => {
    if (!inWindow(info.windowId)) return;
    const key = keyOfTab(tabId, session.map);
    if (docTab(key)) sendOp("close_tab", { key });
    delete session.map[key];
    reported.delete(key);
    ports.delete(tabId);
    shown.delete(tabId);
    if (session.tabId === tabId) session.tabId = null;
    await save();
  }));

  chrome.tabs.onActivated.addListener(({ tabId, windowId }) => serial(async () => {
    if (!inWindow(windowId)) return;
    const tab = await tabOrNull(tabId);
    const key = keyOfTab(tabId, session.map);
    if (tab && isHttp(tab.url)) {
      if (!docTab(key)) reportTab(tab);
      if (session.state?.active !== key) {
        sendOp("set_active", { key });
        own.active.push({ key, at: Date.now() });
      }
    }
    if (session.tabId !== tabId) {
      if (session.tabId != null) clearTab(session.tabId);
      session.tabId = tabId;
      await save();
      await attach(tabId);
      await pushContent(session.state);
    }
  }));

  listenBookmarks(() => serial(async () => {
    if (!session.doc || !session.state) return;
    await bookmarks.reconcile({ doc: session.doc, prev: session.state, next: session.state, stateAt: session.stateAt });
  }));

  // ---- the content script -> sync.op ----------------------------------------------------------

  const unit = (x) => typeof x === "number" && x >= 0 && x <= 1;
  const index = (x) => Number.isInteger(x) && x >= 0;

  async function fromContent(tabId, port, message) {
    if (message.type === "hello") {
      shown.delete(tabId);
      if (tabId === session.tabId && session.doc) await pushContent(session.state);
      return;
    }
    if (tabId !== session.tabId || !session.doc) return;
    const key = keyOfTab(tabId, session.map);
    if (message.type === "scroll" && unit(message.fraction) && index(message.block) && unit(message.offset)) {
      sendOp("scroll", { tab: key, fraction: message.fraction, block: message.block, offset: message.offset, by: "pc" });
    } else if (message.type === "find" && typeof message.query === "string" && Number.isInteger(message.match)
               && index(message.count)) {
      sendOp("find", { tab: key, query: message.query.slice(0, 256), match: message.match, count: message.count, by: "pc" });
      shown.set(tabId, { ...shown.get(tabId), find: `${message.query.slice(0, 256)}\0${message.match}` });
    } else if (message.type === "highlight" && index(message.block) && index(message.start) && index(message.end)
               && message.start < message.end && typeof message.quote === "string") {
      const url = (await tabOrNull(tabId))?.url;
      if (!isHttp(url)) return;
      const id = randomId();
      const record = {
        url, block: message.block, start: message.start, end: message.end, quote: message.quote.slice(0, 2000),
        note: String(message.note || "").slice(0, 4000), color: message.color || "yellow", by: "pc",
      };
      sendOp("add_highlight", { id, ...record });
      own.highlights.set(id, { record, at: Date.now() });
      await pushContent(session.state);
    }
  }

  chrome.runtime.onConnect.addListener((port) => {
    const tabId = port.sender?.tab?.id;
    if (port.name !== PORT_NAME || tabId == null || port.sender.frameId !== 0) return;
    ports.get(tabId)?.disconnect();
    ports.set(tabId, port);
    port.onMessage.addListener((message) => serial(() => fromContent(tabId, port, message ?? {})));
    port.onDisconnect.addListener(() => { if (ports.get(tabId) === port) ports.delete(tabId); });
  });

  // ---- starting and stopping; the action's menu -----------------------------------------------

  /** "Mirror this tab on my phone": sync.begin; the agent then asks for the tab (sync.capture). */
  async function mirror(tabId, hostGrant = Promise.resolve(false)) {
    const tab = await chrome.tabs.get(tabId);
    await serial(async () => {
      session.mirror = { tabId, windowId: tab.windowId, at: Date.now() };
      await save();
    });
    const granted = await hostGrant;
    showSyncing(tabId, { limited: !granted && !(await mayRead(tab.url)) });
    const reply = await link.request({ type: "sync.begin" }, BEGIN_TIMEOUT_MS);
    results.push(reply);
    await serial(async () => {
      session.mirror = null;
      await save();
    });
    if (reply.ok) showSyncing(tabId, { limited: !(await mayRead(tab.url)), name: reply.name });
    else showFailed(tabId, reply.code, reply.message);
    return reply;
  }

  function stop() {
    post({ type: "sync.end" });
    return serial(endSession);
  }

  function updateMenus() {
    const on = Boolean(session.doc);
    const update = (id, props) => chrome.contextMenus.update(id, props, () => void chrome.runtime.lastError);
    update(MENU.mirror, { visible: true });
    update(MENU.stop, { visible: on });
    update(MENU.follow, { visible: on, checked: follows(session.state) });
    update(MENU.highlight, { visible: on });
  }

  function createMenus() {
    const quiet = () => void chrome.runtime.lastError;
    chrome.contextMenus.removeAll(() => {
      chrome.contextMenus.create({ id: MENU.mirror, title: "Mirror this tab on my phone", contexts: ["action"] }, quiet);
      chrome.contextMenus.create({ id: MENU.stop, title: "Stop mirroring", contexts: ["action"], visible: false }, quiet);
      chrome.contextMenus.create({
        id: MENU.follow, title: "This PC follows the phone", type: "checkbox", checked: true, contexts: ["action"],
        visible: false,
      }, quiet);
      chrome.contextMenus.create({
        id: MENU.highlight, title: "Highlight on my phone", contexts: ["selection"], visible: false,
      }, quiet);
    });
  }

  /** The menu items that exist (contextMenus cannot list them; update() fails for a missing one). */
  function menus() {
    return Promise.all(Object.values(MENU).map((id) => new Promise((done) => {
      chrome.contextMenus.update(id, {}, () => done(chrome.runtime.lastError ? null : id));
    }))).then((ids) => ids.filter(Boolean));
  }

  chrome.runtime.onInstalled.addListener(createMenus);
  chrome.contextMenus.onClicked.addListener((info, tab) => {
    if (info.menuItemId === MENU.mirror && tab?.id != null) {
      // Asked in the click's user gesture, before anything is awaited: without host access
      // mirroring still works (activeTab) until the tab navigates; the badge says so.
      const grant = chrome.permissions.request({ origins: HOSTS }).catch(() => false);
      mirror(tab.id, grant);
    } else if (info.menuItemId === MENU.stop) {
      stop();
    } else if (info.menuItemId === MENU.follow) {
      serial(async () => {
        sendOp("set_follow", { direction: "pc_follows_phone", on: info.checked === true });
        if (session.state) session.state = { ...session.state, follow: { ...session.state.follow, pc_follows_phone: info.checked === true } };
        await save();
      });
    } else if (info.menuItemId === MENU.highlight && tab?.id != null) {
      deliver(tab.id, { type: "highlight-selection", color: "yellow" });
    }
  });

  ready.then(updateMenus);
  // States are whole snapshots: of several waiting in the queue only the newest is applied.
  let newest = null;
  link.listen("sync.state", (message) => {
    newest = message;
    serial(() => (message === newest ? onState(message) : undefined));
  });
  link.listen("error", (message) => {
    errors.push(`agent: ${message.code}: ${message.message}`);
    if (errors.length > LOG) errors.shift();
  });
  link.handle("sync.capture", (message) => serial(() => onCapture(message)));

  // For the devtools console and the tests.
  return {
    get session() { return structuredClone(session); },
    get state() { return structuredClone(session.state); }, // the document as the agent last sent it
    counters, sent, errors, results, mirror, stop, menus,
    /** The selection in tab `tabId` as highlights (what the selection menu item does). */
    highlightSelection: (tabId, color = "yellow") => deliver(tabId, { type: "highlight-selection", color }),
    /** A find made on the PC: shown in the tab and reported. */
    find: (tabId, query, match = 0) => deliver(tabId, { type: "find", query, match }),
    /** Resolves once every queued event has been handled. */
    settled: () => serial(() => undefined),
  };
}
