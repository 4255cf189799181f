// The document's bookmarks <-> the chrome bookmarks folder "peerbeam" (under "Other
// bookmarks"): bookmarks added, renamed or removed in that folder are sent as operations, and
// the other side's are made there. This is the import and export of issue 7; the decisions are
// planBookmarks (sync_plan.js), this file only reads and writes chrome.bookmarks.

import { planBookmarks } from "./sync_plan.js";

export const FOLDER_TITLE = "peerbeam";
// chrome.storage.local: {doc, folderId, ids: {docBookmarkId: {chromeId, title, url, seen?, sentAt?}}}.
// Local, not session storage: the mapping must outlive a browser restart, or a restart would
// import every mirrored bookmark again under new ids.
const STORE = "peerbeamBookmarks";

export class BookmarkMirror {
  /** `send(op, args)` sends one sync.op. */
  constructor(send) {
    this.send = send;
  }

  /**
   * Bring the folder and the document's bookmarks together for the state change prev -> next
   * of document `doc` (prev null: its first state here; prev === next: a change in the folder).
   */
  async reconcile({ doc, prev, next, stateAt }) {
    const store = (await chrome.storage.local.get(STORE))[STORE] ?? {};
    const mapping = store.doc === doc ? store.ids ?? {} : {};
    // The folder is made when a session starts, so the user sees where mirrored bookmarks live.
    let folder = await findFolder(store.folderId, prev === null);
    const nodes = folder ? (await chrome.bookmarks.getChildren(folder)).filter((node) => node.url) : [];
    const plan = planBookmarks({
      prev: prev ? prev.bookmarks ?? {} : null, next: next.bookmarks ?? {}, nodes, mapping, stateAt, now: Date.now(),
    });
    if (plan.create.length && !folder) folder = await findFolder(null, true);
    for (const item of plan.create) {
      const node = await chrome.bookmarks.create({ parentId: folder, title: item.title, url: item.url });
      plan.mapping[item.id] = { chromeId: node.id, title: item.title, url: node.url, seen: true };
    }
    for (const item of plan.retitle) {
      await chrome.bookmarks.update(item.chromeId, { title: item.title }).catch(() => {});
    }
    for (const chromeId of plan.remove) {
      await chrome.bookmarks.remove(chromeId).catch(() => {}); // already gone: fine
    }
    await chrome.storage.local.set({ [STORE]: { doc, folderId: folder ?? null, ids: plan.mapping } });
    for (const { op, args } of plan.ops) this.send(op, args);
    return plan;
  }
}

/** The folder's id: the remembered one if it still is a folder, else "peerbeam" under Other
 * bookmarks (made when `create`), else null. */
export async function findFolder(knownId, create) {
  if (knownId) {
    const [node] = await chrome.bookmarks.get(knownId).catch(() => []);
    if (node && !node.url) return node.id;
  }
  const [root] = await chrome.bookmarks.getTree();
  const other = root.children.find((c) => c.folderType === "other")
    ?? root.children.find((c) => c.id === "2") ?? root.children[root.children.length - 1];
  const existing = (await chrome.bookmarks.getChildren(other.id)).find((c) => !c.url && c.title === FOLDER_TITLE);
  if (existing) return existing.id;
  if (!create) return null;
  return (await chrome.bookmarks.create({ parentId: other.id, title: FOLDER_TITLE })).id;
}

/** Call `changed()` on every bookmark event (the plan finds out whether it concerns the folder). */
export function listenBookmarks(changed) {
  for (const event of ["onCreated", "onChanged", "onRemoved", "onMoved"]) {
    chrome.bookmarks[event].addListener(() => changed());
  }
}
