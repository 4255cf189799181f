// peerbeam's page-sync content script (docs/SYNC.md "Reader view", "Applying remote state").
// Injected into the synced tab after vendor/readability.js, as a classic script:
//   chrome.scripting.executeScript({files: ["vendor/readability.js", "sync_content.js"]})
// It holds no CRDT. It extracts the reader view (blocks that map back to live elements),
// reports the user's scrolling, and applies what the worker forwards: a remote scroll, the
// find query (CSS Custom Highlight API) and the document's highlights.
// Everything but the port glue at the bottom is plain DOM code: the tests load this file into
// a page's main world, where chrome.runtime does not exist. Injecting it again is harmless.
(() => {
  "use strict";
  if (globalThis.peerbeamSync) {
    globalThis.peerbeamSync.start(); // a second injection: reconnect, keep the blocks
    return;
  }

  // ---- limits of docs/SYNC.md "Reader view" ----------------------------------------------
  const MAX_BLOCKS = 2000;
  const MAX_TEXT = 8000; // chars of one block's `t`
  const MAX_JSON_BYTES = 1024 * 1024;
  const MAX_GZIP_BYTES = 65518;
  const MAX_URL = 8192;
  const MAX_TITLE = 1024;
  const MAX_QUOTE = 2000;
  const REPORT_MS = 100; // scroll reports: at most 10 per second
  const SETTLE_MS = 150; // no scroll event for this long: scrolling stopped, report where it ended
  const QUIET_MS = 300; // after applying a remote scroll, our own scroll events are its echo
  const COLORS = ["yellow", "green", "blue", "pink"];
  const INDEX_ATTR = "data-peerbeam-i";

  // Candidate blocks. Leaf divs (no candidate inside) hold text on many sites; Readability
  // turns exactly those into <p>, keeping our attribute (its _setNodeTag copies attributes).
  const CANDIDATES = "p,h1,h2,h3,h4,h5,h6,li,blockquote,pre,img,figcaption,dt,dd,div";
  const NOISE = "nav,header,footer,aside,[role=navigation],[role=banner],[role=contentinfo],[role=complementary]";
  const SKIPPED = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "svg", "math", "IFRAME", "OBJECT",
    "SELECT", "TEXTAREA", "BUTTON", "INPUT", "IMG", "VIDEO", "AUDIO", "CANVAS"]);
  // Elements whose edges separate words when rendered ("a</li><li>b" is not "ab").
  const BREAKS = new Set(["ADDRESS", "ARTICLE", "ASIDE", "BLOCKQUOTE", "BR", "CAPTION", "DD", "DETAILS",
    "DIV", "DL", "DT", "FIELDSET", "FIGCAPTION", "FIGURE", "FOOTER", "FORM", "H1", "H2", "H3", "H4", "H5",
    "H6", "HEADER", "HR", "LI", "MAIN", "NAV", "OL", "P", "PRE", "SECTION", "SUMMARY", "TABLE", "TBODY",
    "TD", "TFOOT", "TH", "THEAD", "TR", "UL"]);

  const api = {
    blocks: [], // [{k, t, src?, el}] of the last extraction; index = reader block index
    outbox: [], // the last messages meant for the worker (the tests read them in the main world)
    start, stop, extract, position, applyScroll, find, rangeFor, offsetsFor, renderHighlights,
    highlightSelection, textOf, apply, receive,
  };
  let blockSet = new Set(); // the blocks' live elements: a block's own text skips the others
  let active = true;

  // ---- text: whitespace runs collapse to one space, trimmed; offsets map back to the DOM ---

  function isSpace(code) {
    // JavaScript's \s and Python's (the agent normalizes the blocks again: what we send must
    // come back unchanged, or offsets would drift): \s of either language collapses here.
    return code === 32 || (code >= 9 && code <= 13) || (code >= 0x1c && code <= 0x1f) || code === 0x85
      || code === 0xa0 || code === 0x1680
      || (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f
      || code === 0x205f || code === 0x3000 || code === 0xfeff;
  }

  function hidden(el) {
    // Readability's own visibility test (no computed styles: the clone has none either).
    return el.hasAttribute("hidden") || el.getAttribute("aria-hidden") === "true"
      || (el.style && el.style.display === "none");
  }

  /**
   * The normalized text of `root` without the subtrees of other blocks. With `mapped`, also
   * where each of its chars comes from: starts[k]/ends[k] are DOM boundary points [node,
   * offset] around char k (a collapsed space maps to the first whitespace of its run, or to
   * the element edge that made it).
   */
  function scan(root, exclude, mapped) {
    let text = "";
    const starts = mapped ? [] : null;
    const ends = mapped ? [] : null;
    let pending = null; // a whitespace run after some text: emitted only if text follows
    const space = (sn, so, en, eo) => {
      if (text.length && !pending) pending = [sn, so, en, eo];
    };
    const visit = (parent) => {
      let index = 0;
      for (let child = parent.firstChild; child; child = child.nextSibling, index++) {
        if (child.nodeType === Node.TEXT_NODE || child.nodeType === Node.CDATA_SECTION_NODE) {
          const data = child.data;
          for (let i = 0; i < data.length; i++) {
            if (isSpace(data.charCodeAt(i))) {
              space(child, i, child, i + 1);
              continue;
            }
            if (pending) {
              text += " ";
              if (mapped) {
                starts.push([pending[0], pending[1]]);
                ends.push([pending[2], pending[3]]);
              }
              pending = null;
            }
            text += data[i];
            if (mapped) {
              starts.push([child, i]);
              ends.push([child, i + 1]);
            }
          }
        } else if (child.nodeType === Node.ELEMENT_NODE) {
          const tag = child.tagName;
          if (exclude.has(child) && child !== root) {
            space(parent, index, parent, index + 1);
          } else if (tag === "BR" || tag === "HR") {
            space(parent, index, parent, index + 1);
          } else if (!SKIPPED.has(tag) && !hidden(child)) {
            const edge = BREAKS.has(tag);
            if (edge) space(parent, index, parent, index);
            visit(child);
            if (edge) space(parent, index + 1, parent, index + 1);
          }
        }
      }
    };
    visit(root);
    return { text, starts, ends };
  }

  const normalize = (s) => String(s || "").replace(/[\s\x1c-\x1f\x85]+/g, " ").trim();
  // t is capped; the cut must not leave a trailing space (t is trimmed).
  const cap = (text) => (text.length > MAX_TEXT ? text.slice(0, MAX_TEXT).trimEnd() : text);

  /** Block i's text as the reader view has it (`t`): for find, highlights and tests. */
  function textOf(i) {
    const block = api.blocks[i];
    if (!block) return "";
    if (block.k === "img") return block.t;
    return cap(scan(block.el, blockSet, false).text);
  }

  function mapping(i) {
    const block = api.blocks[i];
    if (!block || block.k === "img" || !block.el.isConnected) return null;
    const m = scan(block.el, blockSet, true);
    m.text = cap(m.text);
    return m;
  }

  /** A live Range over normalized chars [start, end) of block i, or null. */
  function rangeFor(i, start, end) {
    const m = mapping(i);
    if (!m) return null;
    start = Math.max(0, Math.floor(start));
    end = Math.min(m.text.length, Math.floor(end));
    if (!(start < end)) return null;
    const range = document.createRange();
    range.setStart(...m.starts[start]);
    range.setEnd(...m.ends[end - 1]);
    return range;
  }

  /** The inverse: the blocks' normalized chars a DOM range covers, one entry per block. */
  function offsetsFor(range) {
    const found = [];
    api.blocks.forEach((block, i) => {
      if (block.k === "img" || !block.el.isConnected || !range.intersectsNode(block.el)) return;
      const m = mapping(i);
      if (!m) return;
      let first = -1;
      let last = -1;
      for (let k = 0; k < m.text.length; k++) {
        if (range.comparePoint(...m.starts[k]) === 0 && range.comparePoint(...m.ends[k]) === 0) {
          if (first < 0) first = k;
          last = k;
        } else if (first >= 0) {
          break;
        }
      }
      if (first < 0) return;
      let start = first;
      let end = last + 1;
      while (start < end && m.text[start] === " ") start++;
      while (end > start && m.text[end - 1] === " ") end--;
      end = Math.min(end, start + MAX_QUOTE);
      if (start < end) found.push({ block: i, start, end, quote: m.text.slice(start, end) });
    });
    return found;
  }

  // ---- the reader view ---------------------------------------------------------------------

  const isHttp = (url) => /^https?:$/.test(url.protocol);

  function absolute(raw) {
    if (!raw) return null;
    try {
      const url = new URL(String(raw).trim(), document.baseURI);
      if (!isHttp(url)) return null;
      url.hash = "";
      return url.href.length <= 2048 ? url.href : null;
    } catch {
      return null;
    }
  }

  // The same source rule as capture.js readPage (a classic script cannot import it): the img
  // block's src must equal the `source` of the thumbnail the agent made from the page report.
  function imageSource(img) {
    const largest = (srcset) => {
      let best = null;
      let size = -1;
      for (const part of (srcset || "").split(/,\s+/)) {
        const [url, descriptor = "1x"] = part.trim().split(/\s+/);
        const n = parseFloat(descriptor) || 0;
        if (url && n > size) [best, size] = [url, n];
      }
      return best;
    };
    const current = absolute(img.currentSrc || img.src);
    const lazy = ["data-src", "data-lazy-src", "data-srcset", "data-lazy-srcset", "data-original"]
      .some((name) => img.hasAttribute(name));
    if (img.complete && img.naturalWidth > 0 && current !== null && !lazy) return current;
    const pictureSource = img.parentElement?.tagName === "PICTURE"
      ? img.parentElement.querySelector("source[srcset]")?.getAttribute("srcset") : null;
    return absolute(largest(img.getAttribute("data-srcset") || img.getAttribute("data-lazy-srcset")))
      || absolute(img.getAttribute("data-src") || img.getAttribute("data-lazy-src") || img.getAttribute("data-original"))
      || absolute(largest(img.getAttribute("srcset") || pictureSource))
      || absolute(img.getAttribute("src"));
  }

  /** Indexes (into `live`) of the candidates Readability keeps, or null when it keeps none. */
  function readabilityKeeps(live) {
    const Readability = globalThis.PeerbeamReadability;
    if (typeof Readability !== "function") return null;
    const clone = document.cloneNode(true);
    const copies = clone.querySelectorAll(CANDIDATES);
    if (copies.length !== live.length) return null; // not the same tree: cannot map back
    copies.forEach((el, i) => el.setAttribute(INDEX_ATTR, String(i)));
    let article;
    try {
      // serializer: hand back the article element itself, not its HTML.
      article = new Readability(clone, { serializer: (el) => el }).parse();
    } catch {
      return null;
    }
    const root = article?.content;
    if (!root || typeof root.querySelectorAll !== "function") return null;
    const kept = [...root.querySelectorAll(`[${INDEX_ATTR}]`)].map((el) => Number(el.getAttribute(INDEX_ATTR)));
    if (root.hasAttribute?.(INDEX_ATTR)) kept.push(Number(root.getAttribute(INDEX_ATTR)));
    const valid = kept.filter((i) => Number.isInteger(i) && i >= 0 && i < live.length);
    return valid.length ? valid : null;
  }

  function kindOf(el, candidates) {
    const tag = el.tagName;
    if (/^H[1-6]$/.test(tag)) return tag.toLowerCase();
    if (tag === "LI") return "li";
    if (tag === "BLOCKQUOTE") return "quote";
    if (tag === "PRE") return "pre";
    if (tag === "IMG") return "img";
    // A paragraph inside a quote or list item Readability kept reads as one.
    for (let up = el.parentElement; up; up = up.parentElement) {
      if (!candidates.has(up)) continue;
      if (up.tagName === "BLOCKQUOTE") return "quote";
      if (up.tagName === "LI") return "li";
      break;
    }
    return "p";
  }

  const utf8Length = (s) => new TextEncoder().encode(s).length;

  async function gzipLength(text) {
    if (typeof CompressionStream !== "function") return 0;
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    return (await new Response(stream).arrayBuffer()).byteLength;
  }

  /**
   * The blocks of the live page, synchronously: Readability's choice (or the fallback), in
   * document order, each with its live element. Caps the count and each `t`, not the bytes.
   */
  function collect() {
    const live = [...document.querySelectorAll(CANDIDATES)];
    const leafDiv = (el) => el.tagName !== "DIV" || el.querySelector(CANDIDATES) === null;
    let indexes = readabilityKeeps(live);
    if (!indexes) {
      indexes = live.map((el, i) => i).filter((i) => !live[i].closest(NOISE) && !live[i].closest("[hidden]"));
    }
    const elements = [...new Set(indexes)].sort((a, b) => a - b).map((i) => live[i]).filter(leafDiv);
    // Pass 1: which elements make a block (text, or an image with a source). Pass 2: their
    // text without each other's subtrees, exactly as textOf() will see it later.
    const candidates = new Set(elements);
    blockSet = candidates;
    const kept = elements.filter((el) => (el.tagName === "IMG" ? imageSource(el) !== null : scan(el, blockSet, false).text !== ""));
    blockSet = new Set(kept);
    const blocks = [];
    let truncated = kept.length > MAX_BLOCKS;
    for (const el of kept.slice(0, MAX_BLOCKS)) {
      if (el.tagName === "IMG") {
        blocks.push({ k: "img", t: cap(normalize(el.getAttribute("alt"))), src: imageSource(el), el });
        continue;
      }
      const full = scan(el, blockSet, false).text;
      if (full.length > MAX_TEXT) truncated = true;
      blocks.push({ k: kindOf(el, candidates), t: cap(full), el });
    }
    blockSet = new Set(blocks.map((b) => b.el));
    api.blocks = blocks;
    mark("peerbeamBlocks", blocks.length);
    return truncated;
  }

  const plain = (b) => (b.k === "img" ? { k: b.k, t: b.t, src: b.src } : { k: b.k, t: b.t });

  /**
   * The reader view of the live page: {url, title, blocks: [{k, t, src?}], truncated}. The
   * blocks become the anchors of scroll, find and highlights until the next extraction.
   */
  async function extract() {
    let truncated = collect();
    const blocks = api.blocks;
    const url = location.href.slice(0, MAX_URL);
    const title = normalize(document.title).slice(0, MAX_TITLE);
    const json = (n, cut) => JSON.stringify({ v: 1, url, title, truncated: cut, blocks: blocks.slice(0, n).map(plain) });
    // The JSON cap: the longest prefix of blocks that fits.
    let n = blocks.length;
    let size = utf8Length(json(0, true));
    for (let i = 0; i < blocks.length; i++) {
      size += utf8Length(JSON.stringify(plain(blocks[i]))) + 1;
      if (size > MAX_JSON_BYTES) {
        n = i;
        break;
      }
    }
    // The gzip cap (the agent checks again with its own gzip): binary search on the prefix.
    if (await gzipLength(json(n, truncated || n < blocks.length)) > MAX_GZIP_BYTES) {
      let [lo, hi] = [0, n];
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (await gzipLength(json(mid, true)) <= MAX_GZIP_BYTES) lo = mid;
        else hi = mid - 1;
      }
      n = lo;
    }
    if (n < blocks.length) {
      truncated = true;
      blocks.length = n; // the cut blocks keep their elements out of the others' text
      mark("peerbeamBlocks", n);
    }
    return { url, title, blocks: blocks.map(plain), truncated };
  }

  // ---- scrolling ---------------------------------------------------------------------------

  let quietUntil = 0;
  let lastReport = 0;
  let lastSent = "";
  let reportTimer = null;
  let settleTimer = null;
  let scrolled = null; // the element the user scrolled last, when it is not the document

  function scrollerOf(el) {
    for (let up = el?.parentElement; up && up !== document.body && up !== document.documentElement; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (/(auto|scroll|overlay)/.test(style.overflowY) && up.scrollHeight > up.clientHeight + 1) return up;
    }
    return document.scrollingElement || document.documentElement;
  }

  const rendered = (rect) => rect.width > 0 || rect.height > 0;

  /** Where the view is: {fraction, block, offset} (docs/SYNC.md `scroll`). */
  function position() {
    const page = document.scrollingElement || document.documentElement;
    const scroller = scrolled?.isConnected && page.scrollHeight <= page.clientHeight + 1 ? scrolled : page;
    const top = scroller === page ? 0 : scroller.getBoundingClientRect().top;
    const range = scroller.scrollHeight - scroller.clientHeight;
    const fraction = range > 0 ? Math.min(1, Math.max(0, scroller.scrollTop / range)) : 0;
    // The block spanning the top edge; of several (nested lists), the one starting lowest.
    // None spans it (a gap): the first block below it, at offset 0.
    let best = -1;
    let bestTop = -Infinity;
    let below = -1;
    for (let i = 0; i < api.blocks.length; i++) {
      const el = api.blocks[i].el;
      if (!el.isConnected) continue;
      const rect = el.getBoundingClientRect();
      if (!rendered(rect)) continue;
      if (rect.top <= top + 0.5 && rect.bottom > top + 0.5) {
        if (rect.top >= bestTop) [best, bestTop] = [i, rect.top];
      } else if (below < 0 && rect.top > top) {
        below = i;
      }
    }
    let block = best >= 0 ? best : below >= 0 ? below : 0;
    let offset = 0;
    if (best >= 0) {
      const rect = api.blocks[best].el.getBoundingClientRect();
      offset = Math.min(1, Math.max(0, (top - rect.top) / rect.height));
    }
    if (!api.blocks.length) block = 0;
    mark("peerbeamBlock", block);
    return { fraction: round(fraction), block, offset: round(offset) };
  }

  const round = (x) => Math.round(x * 1e4) / 1e4;

  /** Scroll `el` (or its scroll container) so that y `within` its box sits at the top. */
  function scrollElementTo(el, within) {
    const scroller = scrollerOf(el);
    const page = document.scrollingElement || document.documentElement;
    const edge = scroller === page ? 0 : scroller.getBoundingClientRect().top;
    const delta = el.getBoundingClientRect().top + within - edge;
    if (scroller === page) window.scrollTo({ top: window.scrollY + delta, behavior: "instant" });
    else scroller.scrollTo({ top: scroller.scrollTop + delta, behavior: "instant" });
  }

  /** A remote scroll: block `block` at `offset` into it at the top (or `fraction` of the page). */
  function applyScroll({ fraction = 0, block = -1, offset = 0 } = {}) {
    quietUntil = performance.now() + QUIET_MS;
    clearTimeout(reportTimer);
    clearTimeout(settleTimer);
    reportTimer = settleTimer = null;
    const el = api.blocks[block]?.el;
    const rect = el?.isConnected ? el.getBoundingClientRect() : null;
    if (rect && rendered(rect)) {
      scrollElementTo(el, Math.min(1, Math.max(0, offset)) * rect.height);
    } else {
      const page = document.scrollingElement || document.documentElement;
      window.scrollTo({ top: Math.min(1, Math.max(0, fraction)) * (page.scrollHeight - page.clientHeight), behavior: "instant" });
    }
    const now = position();
    lastSent = key(now);
    mark("peerbeamScrollApplied", Number(document.documentElement.dataset.peerbeamScrollApplied || 0) + 1);
    return now;
  }

  const key = (p) => `${p.block}:${p.offset}:${p.fraction}`;

  function report() {
    reportTimer = null;
    if (!active || performance.now() < quietUntil) return;
    if (!api.blocks.length) collect(); // scrolled before the worker asked for the reader view
    const now = position();
    lastReport = performance.now();
    if (key(now) === lastSent) return;
    lastSent = key(now);
    post({ type: "scroll", ...now });
  }

  function onScroll(event) {
    if (!active) return;
    if (event.target instanceof Element) scrolled = event.target;
    const now = performance.now();
    if (now < quietUntil) {
      // Most likely the remote scroll's own events: nothing is reported now. Once the window
      // ends, a view that is not where the remote scroll put it (the user scrolled meanwhile)
      // is reported after all.
      position();
      clearTimeout(settleTimer);
      settleTimer = setTimeout(report, quietUntil - now + 20);
      return;
    }
    if (!reportTimer) reportTimer = setTimeout(report, Math.max(0, lastReport + REPORT_MS - performance.now()));
    clearTimeout(settleTimer);
    settleTimer = setTimeout(report, SETTLE_MS);
  }

  // ---- find and highlights (CSS Custom Highlight API) --------------------------------------

  const STYLE_ID = "peerbeam-sync-style";
  const STYLE = `
::highlight(peerbeam-find) { background-color: rgba(255, 214, 0, 0.6); color: inherit; }
::highlight(peerbeam-find-current) { background-color: #ff8a00; color: #000; }
::highlight(peerbeam-highlight-yellow) { background-color: rgba(255, 235, 59, 0.55); }
::highlight(peerbeam-highlight-green) { background-color: rgba(102, 222, 120, 0.5); }
::highlight(peerbeam-highlight-blue) { background-color: rgba(100, 170, 255, 0.45); }
::highlight(peerbeam-highlight-pink) { background-color: rgba(255, 120, 190, 0.45); }`;

  function ensureStyle() {
    if (document.getElementById(STYLE_ID)) return;
    const style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = STYLE;
    (document.head || document.documentElement).append(style);
  }

  const highlights = () => (typeof CSS !== "undefined" && CSS.highlights ? CSS.highlights : null);

  function setHighlight(name, ranges, priority) {
    const registry = highlights();
    if (!registry) return;
    if (!ranges.length) {
      registry.delete(name);
      return;
    }
    const highlight = new Highlight(...ranges);
    highlight.priority = priority;
    registry.set(name, highlight);
  }

  // Case-insensitive as both sides count it: lower-case per UTF-16 unit, keeping every offset.
  function lower(s) {
    const quick = s.toLowerCase();
    if (quick.length === s.length) return quick;
    let out = "";
    for (const c of s) {
      const l = c.toLowerCase();
      out += l.length === c.length ? l : c;
    }
    return out;
  }

  let found = { query: "", matches: [], current: -1 };

  /**
   * Highlight every match of `query` in the blocks' text; `match` is the current one (-1 =
   * none), scrolled into view when `follow`. Matches are the non-overlapping occurrences
   * in each block's `t`, left to right, so the phone counts the same ones.
   */
  function find(query, match = -1, { follow = true } = {}) {
    query = String(query || "").slice(0, 256);
    ensureStyle();
    const matches = [];
    if (query) {
      const q = lower(query);
      api.blocks.forEach((block, i) => {
        const text = lower(textOf(i));
        for (let at = text.indexOf(q); at >= 0; at = text.indexOf(q, at + q.length)) {
          matches.push({ block: i, start: at, end: at + q.length });
        }
      });
    }
    const current = Number.isInteger(match) && match >= 0 && match < matches.length ? match : -1;
    const ranges = matches.map((m) => rangeFor(m.block, m.start, m.end));
    setHighlight("peerbeam-find", ranges.filter((r, i) => r && i !== current), 1);
    setHighlight("peerbeam-find-current", current >= 0 && ranges[current] ? [ranges[current]] : [], 2);
    found = { query, matches, current };
    mark("peerbeamFind", matches.length);
    mark("peerbeamFindCurrent", current);
    if (follow && current >= 0) {
      quietUntil = performance.now() + QUIET_MS; // scrolling to the match is no user scroll
      const range = ranges[current];
      const el = range ? range.startContainer.parentElement : api.blocks[matches[current].block].el;
      const rect = range ? range.getBoundingClientRect() : el.getBoundingClientRect();
      if (rect.top < 0 || rect.bottom > window.innerHeight) {
        const anchor = range ? el : api.blocks[matches[current].block].el;
        scrollElementTo(anchor, rect.top - anchor.getBoundingClientRect().top - window.innerHeight / 3);
      }
      lastSent = key(position()); // where the remote find left the view: no echo
    }
    return { query, count: matches.length, match: current };
  }

  /**
   * The document's highlights for this page: [{id, block, start, end, quote, color}]. A
   * highlight whose offsets no longer hold its quote (the page changed) is looked up by its
   * quote in the same block; failing that it is not shown.
   */
  function renderHighlights(list) {
    ensureStyle();
    const byColor = Object.fromEntries(COLORS.map((c) => [c, []]));
    let shown = 0;
    for (const h of Array.isArray(list) ? list : []) {
      const text = textOf(h.block);
      let start = h.start;
      let end = h.end;
      if (h.quote && text.slice(start, end) !== h.quote) {
        start = text.indexOf(h.quote);
        end = start + h.quote.length;
        if (start < 0) continue;
      }
      const range = rangeFor(h.block, start, end);
      if (!range) continue;
      byColor[COLORS.includes(h.color) ? h.color : "yellow"].push(range);
      shown++;
    }
    for (const color of COLORS) setHighlight(`peerbeam-highlight-${color}`, byColor[color], 0);
    mark("peerbeamHighlights", shown);
    return shown;
  }

  /** The user's selection as highlights (one per block it touches), reported to the worker. */
  function highlightSelection(color = "yellow", note = "") {
    const selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return [];
    const parts = offsetsFor(selection.getRangeAt(0)).map((part) => ({
      ...part, note: String(note || "").slice(0, 4000), color: COLORS.includes(color) ? color : "yellow",
    }));
    for (const part of parts) post({ type: "highlight", ...part });
    return parts;
  }

  // ---- state from the worker ---------------------------------------------------------------

  /** {scroll?, find?, highlights?, follow} as the worker forwards them (sync.js). */
  async function apply(message) {
    if (!active) start();
    if (!api.blocks.length) await extract();
    if (message.highlights) renderHighlights(message.highlights);
    if (message.find) find(message.find.query, message.find.match, { follow: message.follow !== false });
    if (message.scroll) applyScroll(message.scroll);
    return { blocks: api.blocks.length, find: found.matches.length };
  }

  function mark(name, value) {
    document.documentElement.dataset[name] = String(value);
  }

  function stop() {
    active = false;
    for (const name of ["peerbeam-find", "peerbeam-find-current", ...COLORS.map((c) => `peerbeam-highlight-${c}`)]) {
      highlights()?.delete(name);
    }
    document.getElementById(STYLE_ID)?.remove();
    for (const name of ["peerbeamFind", "peerbeamFindCurrent", "peerbeamBlock", "peerbeamHighlights", "peerbeamBlocks"]) {
      delete document.documentElement.dataset[name];
    }
    clearTimeout(reportTimer);
    clearTimeout(settleTimer);
    reportTimer = settleTimer = null;
    if (port) {
      const old = port;
      port = null;
      try { old.disconnect(); } catch { /* already gone */ }
    }
  }

  // ---- the port to the worker (the only chrome.* use) --------------------------------------

  const canConnect = () => typeof globalThis.chrome?.runtime?.connect === "function";
  let port = null;

  function connect() {
    if (port || !canConnect()) return port;
    try {
      port = chrome.runtime.connect({ name: "peerbeam-sync" });
    } catch {
      return (port = null); // the extension was reloaded: this script is an orphan
    }
    port.onMessage.addListener(receive);
    port.onDisconnect.addListener(() => { port = null; }); // the worker stopped: reconnect on need
    port.postMessage({ type: "hello", url: location.href });
    return port;
  }

  function post(message) {
    api.outbox.push(message);
    if (api.outbox.length > 100) api.outbox.shift();
    if (!active) return;
    try {
      connect()?.postMessage(message);
    } catch {
      port = null;
    }
  }

  /** A message from the worker, by the port or (no port yet) by executeScript. */
  async function receive(message) {
    if (!message || typeof message !== "object") return null;
    if (message.type === "apply") return apply(message);
    if (message.type === "highlight-selection") return highlightSelection(message.color, message.note);
    if (message.type === "find") {
      // A find made on the PC: shown here, and reported so the phone shows it too.
      if (!api.blocks.length) await extract();
      const result = find(message.query, message.match ?? 0, { follow: true });
      post({ type: "find", query: result.query, match: result.match, count: result.count });
      return result;
    }
    if (message.type === "stop") return stop();
    return null;
  }

  function start() {
    active = true;
    connect();
  }

  addEventListener("scroll", onScroll, { capture: true, passive: true });
  globalThis.peerbeamSync = api;
  start();
})();
