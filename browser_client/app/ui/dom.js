// Building DOM without markup strings: every text from the network (a PC's name, a message)
// goes in as a text node, never as HTML, so nothing a peer sends can become script.

/**
 * @param {string} tag "button", or "button.primary#pair" for classes and an id
 * @param {Record<string, string | boolean | ((event: Event) => void)>} [attrs] `on*` are listeners
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name);
  for (const part of rest) {
    if (part.startsWith('.')) el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else if (value !== false) el.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/**
 * Replace the children of `parent`; null and false are skipped (replaceChildren would write
 * them as text).
 * @param {Element} parent
 * @param {...(Node | null | false)} children
 */
export function fill(parent, ...children) {
  parent.replaceChildren(.../** @type {Node[]} */ (children.filter((c) => c !== null && c !== false)));
}
