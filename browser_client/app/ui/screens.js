// Every screen of the phone app, and the status bar above them. One screen at a time fills
// <main>; <body data-screen="..."> names it (tests and styles read it). The status bar shows,
// whenever a PC is known: its name, connecting / connected / offline, the path (LAN, direct or
// relay and how) and the round-trip time.

import { cardElement } from './cards.js';
import { fill, h } from './dom.js';
import { showTransfer } from './transfers.js';

/** @typedef {'connecting' | 'connected' | 'offline' | 'none'} LinkState */
/** @typedef {import('../core/path.js').PathInfo} PathInfo */

const PATH_WORDS = { lan: 'Same network', direct: 'Direct', relay: 'Relay' };

/**
 * The failure screens: a title and what to do next. Where the error's own sentence says more
 * than the title (`reason`), it goes between them.
 * @type {Record<string, {title: string, next: string, retry?: string, reason?: boolean}>}
 */
const FAILURES = {
  expired: { title: 'This code has expired', next: 'Codes last two minutes. Scan the fresh code on your PC’s screen.' },
  used: { title: 'This code was already used', next: 'Each code pairs one device, once. Scan the fresh code on your PC’s screen.' },
  damaged: {
    title: 'This link is damaged',
    next: 'The code was not read completely, or the link was changed. Scan the code on your PC again.',
  },
  gone: {
    title: 'Your PC is no longer waiting',
    next: 'Start peerbeam on your PC again (peerbeam agent) and scan the new code it shows.',
  },
  interception: {
    title: 'Connection not secure',
    next: 'Something between this phone and your PC interfered, so nothing was sent. Pair again with a fresh code, on a network you trust.',
    retry: 'Try again',
  },
  relay: {
    title: 'No route to your PC',
    next: 'Join the same Wi-Fi as your PC, then scan the fresh code on your PC. If you can’t, ask whoever runs the peerbeam server to check its relay (TURN).',
    reason: true,
  },
  timeout: {
    title: 'Couldn’t connect to your PC',
    next: 'Check that both devices are online, then scan the fresh code on your PC.',
    reason: true,
  },
  server: { title: 'Can’t reach the peerbeam server', next: 'Check this phone’s connection, then try again.', retry: 'Try again' },
  rejected: { title: 'Pairing declined', next: 'Scan the code on your PC again to retry.', reason: true },
  removed: { title: 'Your PC removed this pairing', next: 'Scan the code on your PC to pair again.' },
  busy: { title: 'Too many attempts', next: 'Wait a minute, then scan the code again.' },
  broken: { title: 'Something went wrong', next: 'Reload the page and try again.', retry: 'Reload', reason: true },
};

/** Which failure screen an error code gets. @param {string} code */
export function failureFor(code) {
  return {
    token_expired: 'expired', token_used: 'used', room_full: 'used', bad_token: 'damaged', bad_link: 'damaged',
    peer_gone: 'gone', interception: 'interception', relay_unavailable: 'relay', connect_timeout: 'timeout',
    server_unreachable: 'server', pairing_rejected: 'rejected', unknown_device: 'removed', rate_limited: 'busy',
  }[code] ?? 'broken';
}

export class Ui {
  constructor() {
    this.main = /** @type {HTMLElement} */ (document.getElementById('screen'));
    this.bar = /** @type {HTMLElement} */ (document.getElementById('status'));
    /** @type {HTMLElement | null} */
    this.messages = null;
    /** @type {HTMLElement | null} */ this.cards = null;
    /** @type {HTMLElement | null} */ this.transfers = null;
    /** @type {HTMLElement | null} */ this.pullStatus = null;
  }

  /** @param {string} name @param {...Node} content */
  #show(name, ...content) {
    document.body.dataset.screen = name;
    delete document.body.dataset.failure;
    this.messages = null;
    this.cards = null;
    this.transfers = null;
    this.pullStatus = null;
    fill(this.main, ...content);
    window.scrollTo(0, 0);
  }

  /**
   * @param {{name?: string, state: LinkState, path?: PathInfo | null, rttMs?: number | null}} status
   */
  status({ name, state, path = null, rttMs = null }) {
    document.body.dataset.state = state;
    if (state === 'none' || !name) {
      this.bar.hidden = true;
      return;
    }
    const words = { connecting: 'Connecting…', connected: 'Connected', offline: 'Offline' }[state];
    const route = path ? `${PATH_WORDS[path.kind]} · ${path.transport.toUpperCase()}` : '';
    const rtt = rttMs !== null && state === 'connected' ? `${rttMs < 10 ? rttMs.toFixed(1) : Math.round(rttMs)} ms` : '';
    fill(this.bar,
      h('span.dot', { 'aria-hidden': 'true' }),
      h('div.who', {}, h('strong#pc-name', {}, name), h('span#link-state', {}, words)),
      h('div.route', {}, h('span#path', { 'data-kind': path?.kind ?? '' }, route), h('span#rtt', {}, rtt)));
    this.bar.hidden = false;
  }

  welcome() {
    this.#show('welcome',
      h('h1', {}, 'peerbeam'),
      h('p.lead', {}, 'Scan the QR code your PC shows to pair this phone with it.'),
      h('p.hint', {}, 'On your PC, run ', h('code', {}, 'peerbeam agent'), ': the code appears in its window.'));
  }

  checking() {
    this.#show('checking', h('div.spinner', { 'aria-hidden': 'true' }), h('p.lead', {}, 'Checking the code…'));
  }

  /** @param {{name: string, expiresAt: number, onPair: () => void, onCancel: () => void}} options */
  confirm({ name, expiresAt, onPair, onCancel }) {
    const left = Math.round(expiresAt - Date.now() / 1000);
    this.#show('confirm',
      h('h1', {}, 'Pair with ', h('span.name', {}, name), '?'),
      h('p.lead', {}, 'Your PC and this phone will connect directly and privately. Nothing happens until you tap Pair.'),
      h('button.primary#pair', { type: 'button', onclick: onPair }, 'Pair'),
      h('button.secondary#cancel', { type: 'button', onclick: onCancel }, 'Not now'),
      left > 0 && left < 600 ? h('p.hint', {}, `This code expires in about ${left} s.`) : null);
  }

  /** @param {{name: string, step: 'handshake' | 'accept' | 'connect', code?: string}} options */
  pairing({ name, step, code }) {
    const steps = { handshake: 'Securing the connection…', accept: `Waiting for ${name} to accept…`, connect: 'Connecting…' };
    this.#show('pairing',
      h('h1', {}, 'Pairing with ', h('span.name', {}, name)),
      code ? h('p.code#code', { 'aria-label': `Code ${code.split('').join(' ')}` }, `${code.slice(0, 3)} ${code.slice(3)}`) : null,
      code ? h('p.hint', {}, 'Check that your PC shows the same code.') : null,
      h('div.progress', {}, h('div.spinner', { 'aria-hidden': 'true' }), h('p#step', {}, steps[step])));
  }

  /** @param {string} name */
  connecting(name) {
    this.#show('connecting', h('div.spinner', { 'aria-hidden': 'true' }), h('p.lead', {}, `Connecting to ${name}…`));
  }

  /**
   * @param {{name: string, onSend: (text: string) => Promise<void>, onForget: () => void,
   *   onPull: () => void, onFiles: (files: File[]) => void, shake: 'ready' | 'ask' | 'none',
   *   onShakeOn: () => void}} options
   */
  connected({ name, onSend, onForget, onPull, onFiles, shake, onShakeOn }) {
    const input = /** @type {HTMLTextAreaElement} */ (h('textarea#text', { rows: '3', maxlength: '16384',
      placeholder: `A note or a link for ${name}`, 'aria-label': `Text to send to ${name}` }));
    const send = /** @type {HTMLButtonElement} */ (h('button.primary#send', { type: 'submit' }, 'Send to PC'));
    const form = h('form.send', {
      onsubmit: (event) => {
        event.preventDefault();
        const text = input.value;
        if (!text.trim()) return;
        send.disabled = true;
        onSend(text).then(() => { input.value = ''; }).finally(() => { send.disabled = false; });
      },
    }, input, send);
    // Pasting files (a screenshot, a copied photo) sends them; pasted text goes in the box.
    input.addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        onFiles(files);
      }
    });
    /** @param {string} id @param {Record<string, string>} attrs */
    const picker = (id, attrs) => {
      const field = /** @type {HTMLInputElement} */ (h(`input#${id}.file-input`, { type: 'file', ...attrs }));
      field.addEventListener('change', () => {
        const files = [...(field.files ?? [])];
        field.value = '';
        if (files.length) onFiles(files);
      });
      return field;
    };
    const messages = h('ul#messages', { 'aria-live': 'polite' });
    const cards = h('div#cards', { 'aria-live': 'polite' });
    const transfers = h('ul#transfers', { 'aria-live': 'polite' });
    const pullStatus = h('p#pull-status', { role: 'status' });
    const shakeLine = shake === 'ask'
      ? h('button.secondary#shake-on', { type: 'button', onclick: onShakeOn }, 'Turn on shake to get the page')
      : shake === 'ready' ? h('p.hint#shake-hint', {}, 'Or shake your phone.') : null;
    this.#show('connected',
      h('h1', {}, 'Connected to ', h('span.name', {}, name)),
      h('button.primary.big#pull', { type: 'button', onclick: onPull }, 'Get the page on my PC'),
      shakeLine,
      pullStatus,
      cards,
      h('h2', {}, 'Files and photos'),
      h('div.file-actions', {},
        h('label.button.secondary', { for: 'file-input' }, 'Send files'),
        h('label.button.secondary', { for: 'camera-input' }, 'Take a photo')),
      picker('file-input', { multiple: true }),
      picker('camera-input', { accept: 'image/*', capture: 'environment' }),
      transfers,
      h('h2', {}, 'Text'),
      form,
      messages,
      h('button.danger#forget', { type: 'button', onclick: onForget }, 'Forget this PC'));
    this.messages = messages;
    this.cards = cards;
    this.transfers = transfers;
    this.pullStatus = pullStatus;
  }

  /** @param {import('../net/pages.js').Card} card */
  card(card) {
    this.cards?.prepend(cardElement(card));
  }

  /** @param {import('../net/files.js').TransferView} view @param {(id: string) => void} onCancel */
  transfer(view, onCancel) {
    if (this.transfers) showTransfer(this.transfers, view, onCancel);
  }

  /** @param {{state: 'asking' | 'refused' | 'done' | 'idle', text?: string, code?: string}} pull */
  /** Motion access granted after the tap: the button gives way to the hint. */
  shakeListening() {
    document.getElementById('shake-on')?.replaceWith(h('p.hint#shake-hint', {}, 'Or shake your phone.'));
  }

  pull({ state, text = '', code = '' }) {
    const button = /** @type {HTMLButtonElement | null} */ (document.getElementById('pull'));
    if (button) button.disabled = state === 'asking';
    if (!this.pullStatus) return;
    this.pullStatus.dataset.state = state;
    this.pullStatus.dataset.code = code;
    this.pullStatus.textContent = text;
  }

  /**
   * @param {'in' | 'out'} direction
   * @param {string} text
   * @returns {(state: string) => void} marks the message ("delivered", "failed")
   */
  message(direction, text) {
    const mark = h('span.mark', {}, direction === 'out' ? 'sending…' : 'from your PC');
    const item = h(`li.${direction}`, {}, h('p', {}, text), mark);
    this.messages?.prepend(item);
    return (state) => {
      item.dataset.state = state;
      mark.textContent = state;
    };
  }

  /** @param {{name: string, message: string, onRetry: () => void, onForget: () => void}} options */
  offline({ name, message, onRetry, onForget }) {
    this.#show('offline',
      h('h1', {}, h('span.name', {}, name), ' is offline'),
      h('p.lead', {}, 'Make sure peerbeam is running on your PC and that it is online. This page reconnects by itself as soon as it is back.'),
      message ? h('p.hint#reason', {}, message) : null,
      h('button.primary#retry', { type: 'button', onclick: onRetry }, 'Try again now'),
      h('button.danger#forget', { type: 'button', onclick: onForget }, 'Forget this PC'));
  }

  /** @param {{kind: string, message?: string, onRetry?: () => void}} options */
  failure({ kind, message, onRetry }) {
    const text = FAILURES[kind] ?? FAILURES.broken;
    this.#show('failure',
      h('div.badge', { 'aria-hidden': 'true' }, '!'),
      h('h1', {}, text.title),
      text.reason && message ? h('p.reason#reason', {}, message) : null,
      h('p.lead#next', {}, text.next),
      text.retry && onRetry ? h('button.primary#retry', { type: 'button', onclick: onRetry }, text.retry) : null);
    document.body.dataset.failure = kind;
  }

  /** @param {{name: string, told: boolean, phoneName: string}} options */
  forgotten({ name, told, phoneName }) {
    this.#show('forgotten',
      h('h1', {}, 'Forgot ', h('span.name', {}, name)),
      h('p.lead', {}, told
        ? `${name} has removed this phone too.`
        : `${name} was offline, so it still lists this phone. Remove it there with: peerbeam unpair "${phoneName}"`),
      h('p.hint', {}, 'Scan the code on a PC to pair again.'));
  }
}
