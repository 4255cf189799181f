"""The phone web app end to end, in real Chromium as a phone, against the real Python agent.

In the "pc" namespace: `peerbeam signal` (which serves the app) and `peerbeam agent`. In the
"phone" namespace: Debian's Chromium at phone size with touch (phone_driver.py), on a fresh
profile. The link always comes from decoding the agent's QR PNG with zxing-cpp, as a phone
camera would read it. No mocks: real WebRTC (Chromium <-> aiortc), real Noise (JS <-> Python),
real IndexedDB.

Every screen the tests reach is saved at phone size under tests/artifacts/phone/ (gitignored).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crypto.keys import b64u_encode, generate_identity, public_bytes
from tests.integration.phone_driver import SCREEN_STATE
from tests.integration.test_pairing import read_qr, run_cli, start_agent, start_signal
from tests.lab import REPO_ROOT, Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

DRIVER = Path(__file__).parent / "phone_driver.py"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "phone"
PORT = 8443


# WCAG 2.5.5 asks 44 CSS px for a target; we keep 48. Body text at least 14 px.
LAYOUT = """(() => {
  const visible = (el) => el.getClientRects().length > 0;
  return {
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    small_buttons: [...document.querySelectorAll('button')].filter(visible)
      .filter((b) => b.getBoundingClientRect().height < 48 || b.getBoundingClientRect().width < 48)
      .map((b) => b.textContent),
    small_text: [...document.querySelectorAll('p, li, span, strong, h1, h2, button, textarea')].filter(visible)
      .filter((el) => parseFloat(getComputedStyle(el).fontSize) < 14).map((el) => el.textContent.slice(0, 40)),
  };
})()"""


class Phone:
    """Chromium in the phone namespace, one command at a time (phone_driver.py)."""

    def __init__(self, driver: PeerProcess) -> None:
        self.driver = driver

    def console(self) -> str:
        return "\n".join(f"  {e['type']}: {e['text']}" for e in self.driver.events if e["event"] == "console")

    async def do(self, cmd: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        await self.driver.write_line(json.dumps({"cmd": cmd, "timeout": timeout, **fields}))
        done = await self.driver.expect("done", timeout=timeout + 30)
        if not done["ok"]:
            state = await self._state()
            raise AssertionError(f"{cmd} {fields} failed: {done['message']}\npage now: {state}\n"
                                 f"page console:\n{self.console()}")
        return done

    async def _state(self) -> Any:
        await self.driver.write_line(json.dumps({"cmd": "eval", "js": "(" + SCREEN_STATE + ")()"}))
        done = await self.driver.expect("done", timeout=30)
        return done.get("value", done.get("message"))

    async def screen(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return await self.do("screen", name=name, timeout=timeout)

    async def shot(self, name: str) -> Path:
        """Save the screen at phone size, after checking what a screenshot would not tell a
        script: nothing wider than the screen, every button a big tap target, type readable."""
        layout = await self.eval(LAYOUT)
        assert layout == {"overflow": False, "small_buttons": [], "small_text": []}, (name, layout)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.do("shot", path=str(path))
        return path

    async def tap(self, selector: str) -> None:
        await self.do("tap", selector=selector)

    async def eval(self, js: str) -> Any:
        return (await self.do("eval", js=js))["value"]


async def start_phone(host: Host, tmp: Path) -> Phone:
    (tmp / "chromium-home").mkdir(parents=True, exist_ok=True)
    driver = await host.spawn([sys.executable, str(DRIVER), "--profile", str(tmp / "profile")],
                              env={"HOME": str(tmp / "chromium-home")}, cwd=REPO_ROOT)
    await driver.expect("ready", timeout=90)
    return Phone(driver)


async def start_signal_with(pc: Host, tmp: Path, *args: str) -> str:
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(PORT), *args],
                               home=tmp / "srv")
    return (await server.expect("server"))["url"]


async def pair_phone(pc: Host, phone_host: Host, tmp: Path, *signal_args: str, agent_args: tuple[str, ...] = ()
                     ) -> tuple[PeerProcess, Phone, str]:
    """Signal server and agent in "pc", Chromium in "phone"; the phone opens the QR's URL, taps
    Pair, shows the same code the agent asks its user to check, the user accepts, and both
    sides report connected. Returns (agent, phone, url)."""
    origin = await start_signal_with(pc, tmp, *signal_args)
    agent, url = await start_agent(pc, tmp / "pc", origin, *agent_args, auto_accept=False)
    phone = await start_phone(phone_host, tmp)
    await phone.do("goto", url=url)
    confirm = await phone.screen("confirm")
    # The fragment (token, secret, key) left the address bar before anything rendered.
    assert "#" not in confirm["url"] and confirm["url"].endswith("/p")
    assert "Pair with Desk PC?" in confirm["text"]
    await phone.shot("01-confirm")
    # Looking burned nothing: the agent has not heard of a join.
    assert not [e for e in agent.events if e["event"] in ("joined", "join_refused")]

    await phone.tap("#pair")
    joined = await agent.expect("joined", timeout=30)
    assert joined["name"] == "Android phone"
    asked = await agent.expect("confirm", name="Android phone", timeout=30)
    shown = (await phone.do("wait", js="document.getElementById('code')?.textContent"))["value"]
    assert shown.replace(" ", "") == asked["code"] and len(asked["code"]) == 6
    pairing = await phone.screen("pairing")
    assert "Waiting for Desk PC to accept" in pairing["text"]
    await phone.shot("02-code")
    await agent.write_line("y")
    assert (await agent.expect("paired", name="Android phone", timeout=30))["code"] == asked["code"]
    connected = await phone.screen("connected", timeout=40)
    assert "Connected to Desk PC" in connected["text"]
    event = await agent.expect("connected", name="Android phone", timeout=30)
    # Chromium hid its host candidates behind .local names; the agent resolved them over mDNS
    # (host) or learned the address from Chromium's checks (prflx): a LAN path either way.
    assert event["path"]["kind"] == "lan" and event["path"]["local_type"] == "host", event
    assert event["path"]["remote_type"] in ("host", "prflx"), event
    return agent, phone, url


async def devices(pc: Host, home: Path) -> list[dict[str, Any]]:
    code, events = await run_cli(pc, home, "devices")
    assert code == 0, events
    return [e for e in events if e["event"] == "device"]


async def test_pair_from_the_qr_text_both_ways_reload_and_forget(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)
    # The status bar: name, state, the path getStats reports and a measured round-trip time.
    await phone.do("wait", js="document.getElementById('rtt')?.textContent.endsWith('ms')")
    state = await phone.screen("connected")
    assert state["state"] == "connected" and state["path"] == "lan"
    assert state["status"].startswith("Desk PC\nConnected") and "Same network · UDP" in state["status"]
    await phone.shot("03-connected")

    # A text from the agent shows up; one from the page reaches the agent (the channel works
    # both ways, past the binding MAC).
    code_, _ = await run_cli(pc, tmp_path / "pc", "send", "--text", "hello from the PC", "--to", "Android phone")
    assert code_ == 0
    await phone.do("wait", js="document.querySelector('#messages li.in')?.innerText.includes('hello from the PC')")
    await phone.do("fill", selector="#text", text="hello from the phone")
    await phone.tap("#send")
    got = await agent.expect("message", text="hello from the phone", timeout=20)
    assert got["from"] == "Android phone"
    await phone.do("wait", js="document.querySelector('#messages li.out')?.dataset.state === 'delivered'")
    await phone.shot("04-messages")
    (device,) = await devices(pc, tmp_path / "pc")
    assert device["name"] == "Android phone" and device["connected"] is True
    # Plain HTTP on a LAN is no secure context: no WebCrypto, so the identity is raw bytes.
    assert await phone.eval(IDENTITY) == {"secure": False, "cryptoKey": False, "extractable": None, "raw": True}

    # Reload: no QR, no fragment; the page finds its pairing in IndexedDB and meets the agent
    # through the rendezvous id (KK handshake), and the channel works again.
    await phone.do("reload")
    await agent.expect("disconnected", name="Android phone", timeout=30)
    again = await phone.screen("connected", timeout=40)
    assert again["url"].endswith("/p") and "Connected to Desk PC" in again["text"]
    await agent.expect("connected", name="Android phone", timeout=30)
    code_, _ = await run_cli(pc, tmp_path / "pc", "send", "--text", "after the reload", "--to", "Android phone")
    assert code_ == 0
    await phone.do("wait", js="document.querySelector('#messages li.in')?.innerText.includes('after the reload')")

    # Forget: the page tells the agent (unpair), which drops the pairing; the page drops its own.
    await phone.tap("#forget")
    forgotten = await phone.screen("forgotten")
    assert "Desk PC has removed this phone too." in forgotten["text"]
    await phone.shot("05-forgotten")
    await agent.expect("unpaired", name="Android phone", timeout=20)
    assert await devices(pc, tmp_path / "pc") == []
    assert await phone.eval("""new Promise((done) => {
        const open = indexedDB.open('peerbeam');
        open.onsuccess = () => {
          const get = open.result.transaction('pairings').objectStore('pairings').count();
          get.onsuccess = () => done(get.result);
        };
      })""") == 0
    # And a reload now is a fresh start: nothing to reconnect to.
    await phone.do("reload")
    welcome = await phone.screen("welcome")
    assert "Scan the QR code" in welcome["text"] and welcome["status"] is None
    await phone.shot("06-welcome")


async def test_replayed_damaged_and_forged_links(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    agent, phone, url = await pair_phone(pc, phone_host, tmp_path)
    after_pairing = await agent.expect("qr", timeout=30)  # the agent shows a fresh code at once

    # The same QR again: the server remembers its token was used.
    await phone.do("goto", url=url)
    used = await phone.screen("failure")
    assert used["failure"] == "used" and "already used" in used["text"] and "fresh code" in used["text"]
    assert "#" not in used["url"]
    await phone.shot("10-used")

    # A fragment that does not parse (a partial scan): refused before any contact.
    fresh = read_qr(tmp_path / "pc" / "qr.png")
    assert fresh == after_pairing["url"]
    await phone.do("goto", url=fresh[:-3])
    damaged = await phone.screen("failure")
    assert damaged["failure"] == "damaged" and "damaged" in damaged["text"]
    await phone.shot("11-damaged")

    # A well-formed fragment with another PC's key (a swapped QR sticker): the token is real, so
    # the page asks; after the tap the Noise handshake cannot complete: interception, on both
    # sides, and nothing is paired.
    forged = f"{fresh.rpartition('.')[0]}.{b64u_encode(public_bytes(generate_identity()))}"
    await phone.do("goto", url=forged)
    await phone.screen("confirm")
    await phone.tap("#pair")
    intercepted = await phone.screen("failure")
    assert intercepted["failure"] == "interception" and "not secure" in intercepted["text"]
    await phone.shot("12-interception")
    assert (await agent.expect("error", code="interception", timeout=20))
    assert [d["name"] for d in await devices(pc, tmp_path / "pc")] == ["Android phone"]


async def test_expired_qr(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    origin = await start_signal_with(pc, tmp_path, "--token-ttl", "2")
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    first = next(e for e in agent.events if e["event"] == "qr" and e["url"] == url)
    phone = await start_phone(phone_host, tmp_path)
    # The point is time passing: wait until the decoded code's own expiry is behind us.
    await asyncio.sleep(max(0.0, first["expires_at"] - time.time()) + 0.5)
    await phone.do("goto", url=url)
    expired = await phone.screen("failure")
    assert expired["failure"] == "expired" and "expired" in expired["text"] and "fresh code" in expired["text"]
    await phone.shot("13-expired")
    assert not [e for e in agent.events if e["event"] in ("joined", "join_refused")]


async def test_agent_killed_then_back(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    agent, phone, _ = await pair_phone(pc, phone_host, tmp_path)

    # Killed without a goodbye: the page notices, says the PC is offline, and keeps waiting at
    # the rendezvous; when the agent is back, it reconnects by itself.
    agent.kill_now()
    offline = await phone.screen("offline", timeout=40)
    assert "Desk PC is offline" in offline["text"] and offline["state"] == "offline"
    assert "reconnects by itself" in offline["text"]
    await phone.shot("14-offline")
    agent2, url = await start_agent(pc, tmp_path / "pc", f"http://{pc.address}:{PORT}")
    back = await phone.screen("connected", timeout=60)
    assert back["state"] == "connected"
    await agent2.expect("connected", name="Android phone", timeout=30)
    code, _ = await run_cli(pc, tmp_path / "pc", "send", "--text", "the agent is back", "--to", "Android phone")
    assert code == 0
    await phone.do("wait", js="document.querySelector('#messages li.in')?.innerText.includes('the agent is back')")

    # The PC removes the pairing: the page is told, says so, and forgets the PC too.
    code, events = await run_cli(pc, tmp_path / "pc", "unpair", "Android phone")
    assert code == 0 and events[-1]["told_peer"] is True, events
    removed = await phone.screen("failure")
    assert removed["failure"] == "removed" and "removed this pairing" in removed["text"]
    assert removed["status"] is None
    await phone.shot("17-removed")

    # A code whose PC went away between the look and the tap: the page says so.
    await phone.do("goto", url=url)
    await phone.screen("confirm")
    agent2.kill_now()
    await phone.tap("#pair")
    gone = await phone.screen("failure")
    assert gone["failure"] == "gone" and "no longer waiting" in gone["text"]
    await phone.shot("15-gone")


async def test_relay_unavailable(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    # No UDP between the two (a firewall), and a TURN server that does not answer: no path.
    for tool in ("iptables", "ip6tables"):
        for chain in ("INPUT", "OUTPUT"):
            done = phone_host.run([tool, "-A", chain, "-p", "udp", "-j", "DROP"])
            assert done.returncode == 0, done.stderr
    origin = await start_signal_with(pc, tmp_path, "--turn-secret", "s3cret",
                                     "--turn-url", f"turn:{pc.address}:3478")
    agent, url = await start_agent(pc, tmp_path / "pc", origin)
    phone = await start_phone(phone_host, tmp_path)
    await phone.do("goto", url=url)
    await phone.screen("confirm")
    await phone.tap("#pair")
    failed = await phone.screen("failure", timeout=40)
    assert failed["failure"] == "relay" and "relay server did not answer" in failed["text"]
    assert "same Wi-Fi" in failed["text"]
    await phone.shot("16-relay")
    assert (await agent.expect("error", timeout=60))["code"] in ("relay_unavailable", "connect_timeout", "peer_gone")


IDENTITY = """new Promise((done) => {
  const open = indexedDB.open('peerbeam');
  open.onsuccess = () => {
    const get = open.result.transaction('identity').objectStore('identity').get('self');
    get.onsuccess = () => {
      const key = get.result.privateKey;
      const held = globalThis.CryptoKey !== undefined && key instanceof CryptoKey;
      done({ secure: isSecureContext, cryptoKey: held, extractable: held ? key.extractable : null,
             raw: key instanceof Uint8Array });
    };
  };
})"""


async def test_identity_storage_raw_over_lan_http_and_non_extractable_when_secure(lan_pair, tmp_path):
    """Over plain HTTP on the LAN (the agent's own server) there is no WebCrypto: raw bytes.
    From a secure origin (http://localhost is one) the identity is a non-extractable X25519
    CryptoKey, and pairing and the KK reconnect work with it (its DH runs in WebCrypto)."""
    pc, phone_host = lan_pair
    # The server runs in the phone's namespace this time, so that the page can be opened as
    # http://localhost: the agent reaches it over the LAN.
    server = await phone_host.peerbeam(["--json", "signal", "--host", "0.0.0.0", "--port", str(PORT)],
                                       home=tmp_path / "srv")
    await server.expect("server")
    agent, url = await start_agent(pc, tmp_path / "pc", f"http://{phone_host.address}:{PORT}")
    phone = await start_phone(phone_host, tmp_path)
    fragment = url.split("#", 1)[1]
    await phone.do("goto", url=f"http://localhost:{PORT}/p#{fragment}")
    await phone.screen("confirm")
    await phone.tap("#pair")
    await phone.screen("connected", timeout=40)
    await agent.expect("connected", name="Android phone", timeout=30)
    assert await phone.eval(IDENTITY) == {"secure": True, "cryptoKey": True, "extractable": False, "raw": False}
    refused = await phone.eval("""new Promise((done) => {
      const open = indexedDB.open('peerbeam');
      open.onsuccess = () => {
        const get = open.result.transaction('identity').objectStore('identity').get('self');
        get.onsuccess = () => crypto.subtle.exportKey('pkcs8', get.result.privateKey).then(
          () => done('exported'), (err) => done(err.name));
      };
    })""")
    assert refused == "InvalidAccessError"

    await phone.do("reload")
    await agent.expect("disconnected", name="Android phone", timeout=30)
    await phone.screen("connected", timeout=40)
    await agent.expect("connected", name="Android phone", timeout=30)
    code, _ = await run_cli(pc, tmp_path / "pc", "send", "--text", "held key works", "--to", "Android phone")
    assert code == 0
    await phone.do("wait", js="document.querySelector('#messages li.in')?.innerText.includes('held key works')")


async def test_the_agent_alone_serves_the_app_on_the_lan_and_the_phone_pairs(lan_lab, tmp_path):
    """The README's run command: `peerbeam agent` with no server. Its embedded server serves the
    app over plain HTTP at the agent's LAN address; Chromium on another machine of the LAN
    (an insecure context: no WebCrypto) pairs, connects and reconnects after a reload."""
    agent, url = await start_agent(lan_lab.lan1, tmp_path / "pc", None)
    assert url.startswith(f"http://{lan_lab.lan1.address}:") and "/p#1." in url
    phone = await start_phone(lan_lab.lan2, tmp_path)
    await phone.do("goto", url=url)
    assert "Pair with Desk PC?" in (await phone.screen("confirm"))["text"]
    await phone.tap("#pair")
    await phone.screen("connected", timeout=40)
    event = await agent.expect("connected", name="Android phone", timeout=30)
    assert event["path"]["kind"] == "lan", event
    assert await phone.eval(IDENTITY) == {"secure": False, "cryptoKey": False, "extractable": None, "raw": True}
    await phone.do("reload")
    await phone.screen("connected", timeout=40)
    await agent.expect("connected", name="Android phone", timeout=30)
