// The link to the running peerbeam agent: a native messaging port to `peerbeam extension-host`
// (.notes/EXTENSION_LINK.md). Requests carry a request_id and are answered by "<type>.result".

export const PING_MS = 20_000; // an MV3 service worker is stopped after ~30 s without activity
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

// chrome.runtime.lastError sentences that mean "nothing to retry until the user acts".
const NOT_INSTALLED = /not found|forbidden/i;

export class NativeLink {
  constructor(hostName) {
    this.hostName = hostName;
    this.port = null;
    this.connects = 0; // how many ports were opened: a reconnect shows here
    this.state = { ok: false, code: "connecting", message: "Connecting to the peerbeam agent…" };
    this.onState = () => {};
    this._handlers = new Map();
    this._listeners = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._retryMs = RETRY_MIN_MS;
    this._retryTimer = null;
    this._pingTimer = null;
  }

  /** Answer requests of `type` coming from the agent; `handler(msg)` returns the reply fields. */
  handle(type, handler) {
    this._handlers.set(type, handler);
  }

  /** Messages of `type` from the agent that want no answer (sync.state): `listener(msg)`. */
  listen(type, listener) {
    this._listeners.set(type, listener);
  }

  connect() {
    if (this.port) return this.port;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this.connects += 1;
    const port = chrome.runtime.connectNative(this.hostName);
    this.port = port;
    port.onMessage.addListener((msg) => this._receive(msg));
    port.onDisconnect.addListener(() => this._dropped(port));
    // Sending is what keeps the service worker (and the agent's view of this link) alive.
    this._pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
    return port;
  }

  send(msg) {
    this.connect().postMessage(msg);
  }

  /** Send `msg` with a fresh request_id; resolves with the reply or an {ok: false} failure. */
  request(msg, timeoutMs) {
    const id = this._nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        resolve({ ok: false, code: "timeout", message: "The peerbeam agent did not answer in time." });
      }, timeoutMs);
      this._pending.set(id, { resolve, timer });
      this.send({ ...msg, request_id: id });
    });
  }

  _receive(msg) {
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
    this._retryMs = RETRY_MIN_MS; // the host is up: the next drop starts the backoff afresh
    if (msg.type.endsWith(".result")) {
      const waiter = this._pending.get(msg.request_id);
      if (waiter) {
        this._pending.delete(msg.request_id);
        clearTimeout(waiter.timer);
        waiter.resolve(msg);
      }
      return;
    }
    const listener = this._listeners.get(msg.type);
    if (listener) {
      listener(msg);
      return;
    }
    const handler = this._handlers.get(msg.type);
    if (handler) {
      this._answer(msg, handler);
    } else if (msg.type === "status" || msg.type === "pong") {
      const { code, message, ...kept } = this.state; // an old failure does not outlive a good status
      this._setState(msg.ok === false ? { ...msg } : { ...kept, ...msg, ok: true });
    }
  }

  async _answer(msg, handler) {
    let reply;
    try {
      reply = await handler(msg);
    } catch (err) {
      reply = { ok: false, code: err.code || "internal", message: String(err.message || err) };
    }
    if (this.port) this.port.postMessage({ type: `${msg.type}.result`, request_id: msg.request_id, ...reply });
  }

  _dropped(port) {
    if (this.port !== port) return;
    const why = chrome.runtime.lastError?.message || "The peerbeam native host exited.";
    this.port = null;
    clearInterval(this._pingTimer);
    const failure = NOT_INSTALLED.test(why)
      ? { ok: false, code: "no_host",
          message: `${why} Run \`peerbeam install-extension-host\` on this computer.` }
      : { ok: false, code: "peer_gone", message: why };
    for (const [id, waiter] of this._pending) {
      clearTimeout(waiter.timer);
      waiter.resolve(failure);
      this._pending.delete(id);
    }
    this._setState(failure);
    // Backoff: a missing host or a crash loop must not spin. A click reconnects at once.
    this._retryTimer = setTimeout(() => this.connect(), this._retryMs);
    this._retryMs = Math.min(this._retryMs * 2, RETRY_MAX_MS);
  }

  _setState(state) {
    this.state = state;
    this.onState(state);
  }
}
