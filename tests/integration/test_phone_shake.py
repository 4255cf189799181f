"""Shake to pull, in real Chromium as a phone, with the motion sensors driven through CDP.

DeviceMotion fires only in secure contexts, so the page is opened as http://localhost (a
secure origin): the signal server runs in the phone's namespace and the agent reaches it over
the LAN, as in test_phone_app.py's secure run. Chromium builds `devicemotion` from its
accelerometer, linear-acceleration and gyroscope sensors; the test overrides all three
(`Emulation.setSensorOverrideEnabled` / `setSensorOverrideReadings`) and swings the gravity-free
reading (`acceleration`, what core/shake.js reads) back and forth. No sleeps: each swing is held
until the page has counted it (`document.body.dataset.shakePeaks`), then reversed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pairing import start_agent
from tests.integration.test_phone_app import PORT, Phone, start_phone
from tests.integration.test_phone_beam import start_site
from tests.lab import REPO_ROOT, Host
from tests.peer_process import PeerProcess

pytestmark = pytest.mark.netns

G = 9.80665
SWING = 25.0  # m/s²: well over core/shake.js's THRESHOLD (13)
SENSORS = ("accelerometer", "linear-acceleration", "gyroscope")


async def pair_on_localhost(pc: Host, phone_host: Host, tmp: Path, *agent_args: str
                            ) -> tuple[PeerProcess, PeerProcess, Phone]:
    """Paired and connected from http://localhost (a secure origin). Returns (signal server,
    agent, phone)."""
    server = await phone_host.peerbeam(["--json", "signal", "--host", "0.0.0.0", "--port", str(PORT)],
                                       home=tmp / "srv")
    await server.expect("server")
    agent, url = await start_agent(pc, tmp / "pc", f"http://{phone_host.address}:{PORT}", *agent_args)
    phone = await start_phone(phone_host, tmp)
    await phone.do("goto", url=f"http://localhost:{PORT}/p#{url.split('#', 1)[1]}")
    await phone.screen("confirm")
    await phone.tap("#pair")
    await phone.screen("connected", timeout=40)
    await agent.expect("connected", name="Android phone", timeout=30)
    return server, agent, phone


async def motion(phone: Phone, x: float, y: float = 0.0, z: float = 0.0) -> None:
    """The phone moving with gravity-free acceleration (x, y, z), lying flat (g on z)."""
    readings: dict[str, dict[str, Any]] = {
        "linear-acceleration": {"x": x, "y": y, "z": z},
        "accelerometer": {"x": x, "y": y, "z": z + G},
        "gyroscope": {"x": 0.0, "y": 0.0, "z": 0.0},
    }
    for sensor, xyz in readings.items():
        await phone.do("cdp", method="Emulation.setSensorOverrideReadings",
                       params={"type": sensor, "reading": {"xyz": xyz}})


async def swing(phone: Phone, x: float, peaks: int) -> None:
    """Hold a swing until the page has counted `peaks` strong swings in all."""
    await motion(phone, x)
    await phone.do("wait", js=f"Number(document.body.dataset.shakePeaks ?? 0) >= {peaks}", timeout=10)


async def shake(phone: Phone, before: int) -> int:
    """Three swings that change direction (a shake, for core/shake.js); returns the peak count."""
    for n, x in enumerate((SWING, -SWING, SWING), start=1):
        await swing(phone, x, before + n)
    await motion(phone, 0.0)
    return before + 3


async def test_shake_pulls_once_refused_then_answered(lan_pair, tmp_path):
    pc, phone_host = lan_pair
    site = await start_site(pc)
    _, agent, phone = await pair_on_localhost(pc, phone_host, tmp_path)
    # A secure context with DeviceMotion. Chromium now has DeviceMotionEvent.requestPermission
    # too (as iOS Safari), so the page offers a button; the tap asks, the sensors permission is
    # granted (as a user allowing it), and the page listens.
    assert await phone.eval("isSecureContext") is True
    assert await phone.eval("typeof DeviceMotionEvent.requestPermission") == "function"
    await phone.do("cdp", method="Browser.grantPermissions",
                   params={"origin": f"http://localhost:{PORT}", "permissions": ["sensors"]})
    await phone.shot("25-shake-ask")
    # The sensors exist before anyone listens: Chromium looks for them when the first
    # devicemotion listener is added.
    for sensor in SENSORS:
        await phone.do("cdp", method="Emulation.setSensorOverrideEnabled",
                       params={"enabled": True, "type": sensor})
    await phone.tap("#shake-on")
    await phone.do("wait", js="document.body.dataset.shake === 'on'")
    listening = await phone.screen("connected")
    assert "Or shake your phone." in listening["text"] and "Turn on shake" not in listening["text"]
    await phone.shot("26-shake-on")

    # Ordinary motion first: the phone at rest, then a slow tilt (gravity moves from z to x,
    # the gravity-free reading stays small) and a walk-like jiggle. The page sees the
    # readings (a devicemotion event is counted) but no swing, so no pull.
    await motion(phone, 0.0)
    await phone.eval("window.__motions = 0; addEventListener('devicemotion', () => { window.__motions += 1; })")
    for x, z in ((0.4, 0.2), (0.8, -0.5), (-0.6, 2.5), (1.0, -3.0)):
        await motion(phone, x, z=z)
        await phone.do("wait", js="window.__motions > 2")
        await phone.eval("window.__motions = 0")
    assert await phone.eval("Number(document.body.dataset.shakePeaks ?? 0)") == 0
    assert not [e for e in agent.events if e["event"] in ("pull_refused", "pulled")]

    # A shake: the page sends page.pull; no extension on the PC, so the agent refuses (no_page)
    # and the page says so.
    peaks = await shake(phone, 0)
    await agent.expect("pull_refused", code="no_page", timeout=20)
    refused = await phone.do("wait", js="document.getElementById('pull-status').dataset.state === 'refused' && "
                                        "document.getElementById('pull-status').dataset.code")
    assert refused["value"] == "no_page"
    # One shake is one pull: the swings kept coming (the cooldown swallows them) and the agent
    # heard exactly one request.
    await motion(phone, -SWING)
    await phone.do("wait", js="window.__motions > 5")
    await motion(phone, 0.0)
    assert len([e for e in agent.events if e["event"] == "pull_refused"]) == 1

    # The extension's stand-in on the PC: after the cooldown (core/shake.js COOLDOWN_MS, the
    # page's own clock), the next shake comes back as a card naming the pull.
    standin = await pc.spawn([sys.executable, "-m", "tests.integration.extension_standin",
                              str(tmp_path / "pc" / "control.sock"), f"{site}/page.html"], cwd=REPO_ROOT)
    await standin.expect("extension")
    await phone.eval("window.__after = performance.now() + 2600")
    await phone.do("wait", js="performance.now() > window.__after", timeout=10)
    await shake(phone, peaks)
    pulled = await agent.expect("pulled", timeout=30)
    assert pulled["url"] == f"{site}/page.html"
    await phone.do("wait", js="document.querySelector('#cards .card')?.dataset.pull.length > 0", timeout=60)
    await phone.shot("27-shaken-card")
    assert len([e for e in agent.events if e["event"] == "pulled"]) == 1
