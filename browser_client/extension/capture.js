// What a tab offers a page card: URL, title and its images, read from the live DOM
// (DESIGN.md "Page capture and thumbnails"; the PAGE record of .notes/EXTENSION_LINK.md).

export const MAX_IMAGES = 200;
export const MAX_URL_CHARS = 2048;
// Natural sizes of images that have not loaded yet are measured by loading them once; a
// page whose images hang must not hold the beam longer than this.
export const LAZY_WAIT_MS = 3000;
// Chrome -> native host frames are capped at 8 MiB by the host; the rest of PAGE is far smaller.
const MAX_SCREENSHOT_CHARS = 6 * 1024 * 1024;

export class NoPage extends Error {
  constructor(message) {
    super(message);
    this.code = "no_page";
  }
}

const isHttp = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

/**
 * PAGE for `tab`: images from the live DOM when this extension may script the tab (the user
 * clicked the toolbar button: activeTab), otherwise only URL and title (a pull from the phone
 * for a tab never clicked; the agent then fetches the page itself).
 */
export async function capturePage(tab, { screenshot = false, domRequired = true } = {}) {
  let page = null;
  try {
    page = await injectReadPage(tab, domRequired ? GRANT_WAIT_MS : 0);
  } catch (err) {
    if (domRequired || !isHttp(tab.url)) {
      throw new NoPage(isHttp(tab.url)
        ? `peerbeam cannot read this page: ${err.message}`
        : "Only http and https pages can be beamed.");
    }
    page = { url: tab.url, title: tab.title || "", images: [] };
  }
  if (!page || !isHttp(page.url)) throw new NoPage("Only http and https pages can be beamed.");
  page.screenshot = screenshot ? await visibleTabJpeg(tab.windowId) : null;
  return page;
}

// The activeTab grant of a click is made in the browser before onClicked is dispatched, yet
// with Chromium 156 about one first click in four right after a page load had its injection
// refused ("Cannot access contents of url"), and the same call 10 ms later went through: the
// grant apparently reaches the page's renderer after the injection request can. So on a click
// a refusal on an http(s) page is retried for a moment before it counts; a page we may really
// not script (the Web Store) is refused every time and costs only this wait.
const GRANT_WAIT_MS = 500;
const GRANT_RETRY_MS = 20;

async function injectReadPage(tab, graceMs) {
  const deadline = Date.now() + graceMs;
  for (;;) {
    try {
      const [injection] = await chrome.scripting.executeScript({
        target: { tabId: tab.id },
        func: readPage,
        args: [MAX_IMAGES, MAX_URL_CHARS, LAZY_WAIT_MS],
      });
      return injection?.result ?? null;
    } catch (err) {
      if (Date.now() >= deadline || !isHttp(tab.url)) throw err;
      await new Promise((done) => setTimeout(done, GRANT_RETRY_MS));
    }
  }
}

async function visibleTabJpeg(windowId) {
  try {
    const shot = await chrome.tabs.captureVisibleTab(windowId, { format: "jpeg", quality: 70 });
    return shot.length <= MAX_SCREENSHOT_CHARS ? shot : null;
  } catch {
    return null; // the tab is not the visible one, or the grant is gone: the card goes without
  }
}

/**
 * Runs inside the page: chrome.scripting.executeScript serialises this function, so it may
 * use nothing from the module's scope. Returns {url, title, images: [{src, width, height,
 * area}]} in document order, each URL once.
 */
export async function readPage(maxImages, maxUrlChars, lazyWaitMs) {
  const absolute = (raw) => {
    if (!raw) return null;
    try {
      const url = new URL(raw.trim(), document.baseURI);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      url.hash = "";
      return url.href.length <= maxUrlChars ? url.href : null;
    } catch {
      return null;
    }
  };
  // HTML "srcset" (w or x descriptors): the candidate with the largest descriptor.
  const largestInSrcset = (srcset) => {
    let best = null;
    let bestSize = -1;
    for (const part of (srcset || "").split(/,\s+/)) {
      const [url, descriptor = "1x"] = part.trim().split(/\s+/);
      const size = parseFloat(descriptor) || 0;
      if (url && size > bestSize) [best, bestSize] = [url, size];
    }
    return best;
  };
  const attrInt = (img, name) => {
    const n = parseInt(img.getAttribute(name) || "", 10);
    return Number.isFinite(n) && n > 0 ? n : 0;
  };
  // Where an image that has not loaded keeps its real picture: lazy-loading scripts' data-*
  // attributes, the largest srcset candidate (own or its <picture>'s first <source>), src.
  const pendingSource = (img) => {
    const pictureSource = img.parentElement?.tagName === "PICTURE"
      ? img.parentElement.querySelector("source[srcset]")?.getAttribute("srcset") : null;
    return absolute(largestInSrcset(img.getAttribute("data-srcset") || img.getAttribute("data-lazy-srcset")))
      || absolute(img.getAttribute("data-src") || img.getAttribute("data-lazy-src") || img.getAttribute("data-original"))
      || absolute(largestInSrcset(img.getAttribute("srcset") || pictureSource))
      || absolute(img.getAttribute("src"));
  };
  const measure = (src) => {
    const probe = new Image();
    probe.decoding = "async";
    probe.src = src;
    return probe.decode().then(() => [probe.naturalWidth, probe.naturalHeight], () => null);
  };

  const seen = new Map();
  const images = [];
  const waits = [];
  for (const img of document.querySelectorAll("img")) {
    if (images.length >= maxImages) break;
    const current = absolute(img.currentSrc || img.src);
    const lazy = img.hasAttribute("data-src") || img.hasAttribute("data-lazy-src")
      || img.hasAttribute("data-srcset") || img.hasAttribute("data-lazy-srcset")
      || img.hasAttribute("data-original");
    const loaded = img.complete && img.naturalWidth > 0 && current !== null;
    const src = loaded && !lazy ? current : pendingSource(img);
    if (src === null) continue;
    const rect = img.getBoundingClientRect();
    const area = Math.round(rect.width * rect.height);
    if (seen.has(src)) {
      const entry = seen.get(src);
      entry.area = Math.max(entry.area, area);
      continue;
    }
    const entry = { src, width: 0, height: 0, area };
    seen.set(src, entry);
    images.push(entry);
    if (src === current && loaded) {
      [entry.width, entry.height] = [img.naturalWidth, img.naturalHeight];
    } else {
      // The layout size from width/height attributes stands in if the probe does not finish.
      [entry.width, entry.height] = [attrInt(img, "width"), attrInt(img, "height")];
      waits.push(measure(src).then((size) => {
        if (size && size[0] > 0) [entry.width, entry.height] = size;
      }));
    }
  }
  if (waits.length) {
    await Promise.race([Promise.all(waits), new Promise((done) => setTimeout(done, lazyWaitMs))]);
  }
  return { url: location.href, title: document.title.slice(0, 1024), images };
}
