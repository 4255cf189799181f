// What the extension does when the shared document changes, and which local changes it reports:
// pure functions of plain data (no chrome.*), so the tests can run them in any page.
// docs/SYNC.md "Applying remote state"; the worker's glue is sync.js and bookmark_mirror.js.
//
// The agent sends the whole state after every change that did not come from the extension
// (not after our own operations), so a state can cross one of our operations on the way and
// still lack it. Remote changes are therefore found by comparing the previous state with the
// new one (never the state with the tab), and our own recent writes are told apart by `by`,
// or, where the document keeps no `by`, by what we ourselves wrote a moment ago.

export const HOSTS = ["http://*/*", "https://*/*"];
// A state that arrives this long after one of our writes and still lacks it has really lost
// it (the other side deleted it); sooner, it may have been sent before our write got there.
export const PENDING_MS = 2000;
const MAX_TITLE = 1024;

export function isHttp(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) && url.length <= 8192;
}

/** 16 lower-case hex chars: the document's ids (docs/SYNC.md). */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A PC tab's key in the document ("t<chrome tab id>"), and back. */
export const tabKey = (tabId) => `t${tabId}`;

export function chromeTabOf(key, map) {
  if (Object.hasOwn(map, key)) return map[key];
  const match = /^t(\d+)$/.exec(key);
  return match ? Number(match[1]) : null;
}

export function keyOfTab(tabId, map) {
  for (const [key, id] of Object.entries(map)) if (id === tabId) return key;
  return tabKey(tabId);
}

export const follows = (state) => state?.follow?.pc_follows_phone !== false;

const sameUrl = (a, b) => String(a).split("#")[0] === String(b).split("#")[0];

/**
 * Tab changes to make in the synced window, for the state change prev -> next (prev null:
 * the first state of this document). `tabs`: the window's chrome tabs [{id, url, active}];
 * `map`: document key -> chrome tab id for tabs the phone opened; `ownActive`: [{key, at}]
 * our recent set_active writes; `now` in ms. Returns [{do: "create", key, url} | {do:
 * "remove", tabId, key} | {do: "navigate", tabId, url} | {do: "activate", tabId}].
 */
export function planTabs({ prev, next, tabs, map, ownActive = [], now }) {
  const actions = [];
  if (!follows(next)) return actions;
  const live = new Map(tabs.map((tab) => [tab.id, tab]));
  const before = prev?.tabs ?? {};
  for (const [key, record] of Object.entries(next.tabs ?? {})) {
    const id = chromeTabOf(key, map);
    const tab = id === null ? undefined : live.get(id);
    if (!tab) {
      // In the document, not in the window: a tab the phone opened. Our own open_tab is in
      // the window already; a PC tab that is gone (closed while apart) is left to close_tab.
      if (!Object.hasOwn(before, key) && record.by !== "pc" && !/^t\d+$/.test(key) && isHttp(record.url)) {
        actions.push({ do: "create", key, url: record.url });
      }
      continue;
    }
    const old = before[key];
    if (old && old.url !== record.url && record.by !== "pc" && isHttp(record.url) && !sameUrl(tab.url, record.url)) {
      actions.push({ do: "navigate", tabId: id, url: record.url });
    }
  }
  for (const key of Object.keys(before)) {
    if (Object.hasOwn(next.tabs ?? {}, key)) continue;
    const id = chromeTabOf(key, map);
    if (id !== null && live.has(id)) actions.push({ do: "remove", tabId: id, key });
  }
  const active = next.active;
  const mine = ownActive.some((w) => w.key === active && now - w.at < PENDING_MS);
  if (active && active !== prev?.active && !mine) {
    const id = chromeTabOf(active, map);
    const tab = id === null ? undefined : live.get(id);
    if (tab && !tab.active) actions.push({ do: "activate", tabId: id });
  }
  return actions;
}

/**
 * The synced tab's share of a state change: the scroll to apply (a new one from the phone),
 * the find to apply (when its query or current match changed from what the tab shows), and
 * the highlights of its page. `shown`: {find: "query\0match" | null, highlights: json | null}
 * of what the tab was last given. Returns {scroll, find, highlights, follow} or null.
 */
export function planContent({ prev, next, key, url, shown }) {
  const follow = follows(next);
  const out = { type: "apply", follow, scroll: null, find: null, highlights: null };
  const scroll = next.scroll?.[key];
  const before = prev?.scroll?.[key];
  if (follow && scroll && scroll.by !== "pc" && (!before || before.n !== scroll.n || before.block !== scroll.block
      || before.offset !== scroll.offset || before.fraction !== scroll.fraction)) {
    out.scroll = { fraction: scroll.fraction, block: scroll.block, offset: scroll.offset };
  }
  const find = next.find?.[key];
  const findKey = find ? `${find.query}\0${find.match}` : `\0-1`;
  if (follow && findKey !== (shown.find ?? "\0-1")) out.find = { query: find?.query ?? "", match: find?.match ?? -1 };
  const list = highlightsFor(next, url);
  const json = JSON.stringify(list);
  if (json !== (shown.highlights ?? "[]")) out.highlights = list;
  return out.scroll || out.find || out.highlights ? out : null;
}

/** The document's highlights on page `url` (fragment ignored), in a stable order. */
export function highlightsFor(state, url) {
  return Object.entries(state?.highlights ?? {})
    .filter(([, h]) => url && sameUrl(h.url, url))
    .map(([id, h]) => ({ id, block: h.block, start: h.start, end: h.end, quote: h.quote, color: h.color }))
    .sort((a, b) => a.block - b.block || a.start - b.start || (a.id < b.id ? -1 : 1));
}

/**
 * Mirror between the document's bookmarks and the chrome bookmarks folder "peerbeam".
 * `prev`/`next`: the bookmarks of the previous and the new state (prev null: first state of
 * this document seen here); `nodes`: the folder's bookmarks [{id, url, title, dateAdded}];
 * `mapping`: document bookmark id -> {chromeId, title, url, seen?, sentAt?} (title: the last
 * title both sides agreed on; seen: a state has held it; sentAt: when we last sent its
 * add_bookmark); `stateAt`: when `next` arrived; `now`; `newId`. Returns {mapping, create:
 * [{id, url, title}], retitle: [{chromeId, title}], remove: [chromeId], ops: [{op, args}]}.
 */
export function planBookmarks({ prev, next, nodes, mapping, stateAt, now, newId = randomId }) {
  const map = structuredClone(mapping);
  const ops = [];
  const create = [];
  const retitle = [];
  const remove = [];
  const byChrome = new Map(nodes.map((node) => [node.id, node]));
  const mappedChrome = new Set(Object.values(map).map((m) => m.chromeId));
  const doc = next ?? {};
  const add = (id, node) => {
    const title = (node.title || node.url).slice(0, MAX_TITLE);
    const created = Math.floor((node.dateAdded ?? now) / 1000);
    ops.push({ op: "add_bookmark", args: { id, url: node.url, title, created, by: "pc" } });
  };
  for (const [id, record] of Object.entries(doc)) {
    const m = map[id];
    if (!m) {
      if (!isHttp(record.url)) continue; // never a javascript: bookmarklet from the other side
      // A bookmark the phone added: adopt a same-URL one of the folder not yet mirrored.
      const twin = nodes.find((node) => !mappedChrome.has(node.id) && node.url === record.url);
      if (twin) {
        map[id] = { chromeId: twin.id, title: record.title, url: twin.url, seen: true };
        mappedChrome.add(twin.id);
        if (twin.title !== record.title) retitle.push({ chromeId: twin.id, title: record.title });
      } else {
        create.push({ id, url: record.url, title: record.title });
      }
      continue;
    }
    m.seen = true;
    delete m.sentAt;
    const node = byChrome.get(m.chromeId);
    if (!node) {
      ops.push({ op: "delete_bookmark", args: { id } }); // removed from the folder here
      delete map[id];
      continue;
    }
    const remoteRenamed = prev ? Object.hasOwn(prev, id) && prev[id].title !== record.title : record.title !== m.title;
    if (remoteRenamed && record.title !== node.title) {
      retitle.push({ chromeId: node.id, title: record.title });
      m.title = record.title;
    } else if (remoteRenamed) {
      m.title = record.title;
    } else if (node.title !== m.title) {
      ops.push({ op: "rename_bookmark", args: { id, title: node.title.slice(0, MAX_TITLE) } });
      m.title = node.title;
    }
    m.url = node.url;
  }
  for (const [id, m] of Object.entries(map)) {
    if (Object.hasOwn(doc, id)) continue;
    const node = byChrome.get(m.chromeId);
    if (m.seen) {
      // The document had it and has it no more: the other side deleted it.
      if (node) remove.push(node.id);
      delete map[id];
    } else if (!node) {
      if (m.sentAt !== undefined) ops.push({ op: "delete_bookmark", args: { id } }); // added, removed here
      delete map[id];
    } else if (m.sentAt !== undefined && stateAt - m.sentAt < PENDING_MS) {
      // Our add may still be on its way (this state left before it arrived).
      if (node.title !== m.title) {
        ops.push({ op: "rename_bookmark", args: { id, title: node.title.slice(0, MAX_TITLE) } });
        m.title = node.title;
      }
    } else {
      add(id, node); // our add never reached the document (the link was down): again
      m.title = node.title;
      m.sentAt = now;
    }
  }
  const mirrored = new Set(Object.values(map).map((m) => m.chromeId));
  for (const node of nodes) {
    if (mirrored.has(node.id) || !isHttp(node.url) || remove.includes(node.id)) continue;
    const id = newId();
    add(id, node);
    map[id] = { chromeId: node.id, title: node.title, url: node.url, sentAt: now };
  }
  return { mapping: map, create, retitle, remove, ops };
}
