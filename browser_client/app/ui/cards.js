// A page card on the phone's screen: title, address, thumbnails; open (http/https only, on a
// tap, no opener, no referrer), copy, share (Web Share API where the browser has it, else copy
// and say so), save an image (a download of the thumbnail as it arrived).
//
// Everything from the PC goes in as text nodes or attribute values (dom.js), and the address
// is opened only after it parses as http(s): a card cannot run script here.

import { h } from './dom.js';

/** The address if it may be opened here (http or https), else null. @param {string} url */
export function openable(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * Put text on the clipboard. The async Clipboard API needs a secure context; over plain HTTP
 * on a LAN only the older execCommand works (inside the tap's user activation).
 * @param {string} text
 * @returns {Promise<boolean>}
 */
export async function copyText(text) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // denied: try the old way
    }
  }
  const area = /** @type {HTMLTextAreaElement} */ (h('textarea', { readonly: true, 'aria-hidden': 'true' }));
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } finally {
    area.remove();
  }
  return ok;
}

/** A file name for the n-th thumbnail of a card. @param {string} title @param {number} n @param {string} mime */
function imageName(title, n, mime) {
  const base = title.replace(/[\\/:*?"<>|\x00-\x1f]+/g, ' ').trim().slice(0, 60) || 'page';
  return `${base} ${n}.${mime === 'image/jpeg' ? 'jpg' : 'webp'}`;
}

/** @param {import('../net/pages.js').Card} card @returns {HTMLElement} */
export function cardElement(card) {
  const { push } = card;
  const href = openable(push.url);
  const note = h('p.card-note', { role: 'status' });
  const say = (/** @type {string} */ text) => { note.textContent = text; };
  const title = push.title.trim() || new URL(push.url).hostname;

  const share = async () => {
    if (typeof navigator.share === 'function') {
      try {
        await navigator.share({ title, url: push.url });
        say('Shared.');
      } catch (err) {
        if (/** @type {Error} */ (err).name !== 'AbortError') say(`Could not share (${/** @type {Error} */ (err).message}).`);
      }
      return;
    }
    say(await copyText(push.url)
      ? 'Sharing isn’t available in this browser, so the link was copied instead.'
      : 'Sharing isn’t available in this browser. Press and hold the address to copy it.');
  };

  const thumbs = card.images.map(({ thumb, blob }, i) => {
    const src = URL.createObjectURL(blob);
    return h('figure.thumb', {},
      h('img', { src, alt: `Image ${i + 1} of ${title}`, width: String(thumb.width), height: String(thumb.height), loading: 'lazy' }),
      h('a.save-image.small-button', { href: src, download: imageName(title, i + 1, thumb.mime) }, 'Save image'));
  });

  return h('article.card', { 'data-card': push.id, 'data-pull': push.pull ?? '' },
    h('h3.card-title', {}, title),
    h('p.card-url', {}, push.url),
    thumbs.length ? h('div.thumbs', {}, ...thumbs) : null,
    card.dropped ? h('p.hint', {}, `${card.dropped} image${card.dropped > 1 ? 's' : ''} did not arrive intact.`) : null,
    h('div.card-actions', {},
      href ? h('a.button.primary.open', { href, target: '_blank', rel: 'noopener noreferrer' }, 'Open') : null,
      h('button.secondary.copy', { type: 'button', onclick: async () => say(await copyText(push.url) ? 'Link copied.' : 'Could not copy: press and hold the address.') }, 'Copy link'),
      h('button.secondary.share', { type: 'button', onclick: share }, 'Share')),
    note);
}
