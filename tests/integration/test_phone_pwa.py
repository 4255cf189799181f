"""The phone app as a PWA, in real Chromium as a phone: its manifest, its service worker (the
offline app shell), and its Web Share Target, end to end to the real agent.

Service workers run only in secure contexts, so the page is opened as http://localhost (the
signal server in the phone's namespace, the agent reaching it over the LAN; see
test_phone_shake.py). What cannot run here: the system Share sheet. The share is the request
the sheet would make, a multipart POST to the manifest's `share_target.action`, sent with
fetch() from a page in the worker's scope, so that the service worker answers it exactly as it
would answer the sheet's navigation; then the page the worker redirects to is opened.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.integration.test_phone_app import PORT
from tests.integration.test_phone_shake import pair_on_localhost

pytestmark = pytest.mark.netns

ORIGIN = f"http://localhost:{PORT}"
SHARED_BYTES = 3 * 1024 * 1024

SHARE = """(async () => {
  // What a Share sheet sends for "photo + caption + link" (W3C Web Share Target §2.4).
  const bytes = new Uint8Array(%d);
  for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const form = new FormData();
  form.append('title', 'Holiday');
  form.append('text', 'look at this');
  form.append('url', 'https://example.org/trip');
  form.append('files', new File([bytes], 'beach photo.jpg', { type: 'image/jpeg' }));
  // 'manual': the redirect itself is the answer to check (a navigation would follow it).
  const response = await fetch('/p?share=1', { method: 'POST', body: form, redirect: 'manual' });
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return { type: response.type,
           sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join(''),
           kept: await caches.has('peerbeam-share') };
})()""" % SHARED_BYTES

SHELL_KEYS = """(async () => {
  const cache = await caches.open('peerbeam-shell-v1');
  return (await cache.keys()).map((r) => new URL(r.url).pathname);
})()"""


async def test_manifest_service_worker_offline_shell_and_share_target(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    downloads = tmp_path / "pc-dl"
    server, agent, phone = await pair_on_localhost(pc, phone_host, tmp_path, "--downloads", str(downloads))

    # The manifest: linked, fetched and parsed by Chromium without a single error.
    manifest = (await phone.do("cdp", method="Page.getAppManifest"))["value"]
    assert manifest["url"] == f"{ORIGIN}/app/manifest.webmanifest"
    assert manifest["errors"] == [], manifest["errors"]
    parsed = manifest.get("manifest") or {}
    if parsed:  # Chromium >= 130 also returns what it understood
        assert parsed["startUrl"] == f"{ORIGIN}/p" and parsed["scope"] == f"{ORIGIN}/p"
        assert parsed["display"] in ("standalone", "kStandalone")  # the enum, as Chromium names it
        assert parsed["shareTarget"]["action"] == f"{ORIGIN}/p?share=1"

    # The service worker: registered at the root, active, and controlling this page (it claims
    # the page that registered it), with the whole app shell kept and nothing else.
    worker = (await phone.do("wait", js="navigator.serviceWorker.controller && navigator.serviceWorker.controller.scriptURL"))
    assert worker["value"] == f"{ORIGIN}/sw.js"
    assert await phone.eval("navigator.serviceWorker.ready.then((r) => r.scope)") == f"{ORIGIN}/"
    kept = await phone.eval(SHELL_KEYS)
    assert "/p" in kept and "/app/main.js" in kept and "/app/vendor/noble.js" in kept
    assert all(path == "/p" or path.startswith("/app/") for path in kept), kept

    # The share: answered by the worker (the server has no POST /p: it would say 405), which
    # kept the items and sent the browser on to /p?share=1.
    shared = await phone.eval(SHARE)
    # (A POST reaching the server would be a 405, not a redirect.)
    assert shared["type"] == "opaqueredirect" and shared["kept"] is True, shared
    await phone.do("goto", url=f"{ORIGIN}/p?share=1")
    state = await phone.screen("connected", timeout=40)
    assert state["url"] == f"{ORIGIN}/p"  # taken once: a reload will not send it again
    got = await agent.expect("received_file", timeout=60)
    assert got["file"] == "beach photo.jpg" and got["sha256"] == shared["sha256"]
    assert hashlib.sha256(Path(got["path"]).read_bytes()).hexdigest() == shared["sha256"]
    text = await agent.expect("message", timeout=20)
    assert text["text"] == "Holiday\nlook at this\nhttps://example.org/trip"
    await phone.do("wait", js="document.querySelector('#transfers li.out')?.dataset.state === 'completed'")
    assert await phone.eval("caches.has('peerbeam-share')") is False
    await phone.shot("40-shared")

    # Offline: the server that served the app is gone. A reload still shows the app (from the
    # worker's cache), which then says it cannot reach the PC.
    server.kill_now()
    await phone.do("reload")
    offline = await phone.screen("offline", timeout=60)
    assert "Desk PC is offline" in offline["text"] and offline["state"] == "offline"
    assert "Cannot reach the peerbeam server" in offline["text"]
    assert await phone.eval("navigator.serviceWorker.controller !== null") is True
    await phone.shot("41-offline-shell")
