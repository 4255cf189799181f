"""The peer's side of bench/lan.py part 2: `peerbeam connect` on the LAN, in-process and timed.

Runs inside the LAN lab's lan2 namespace (never in the host namespace: mDNS and WebRTC belong
in lab namespaces). peer_agent is imported once, so Python start-up is not counted; each run then
does what `peerbeam connect NAME` does — a fresh Node (so a fresh mDNS browser with an empty
cache) maintaining the pairing record — and times it:

* ``found_ms``: a separate, fresh LanBrowser until it has found and resolved the agent's
  service (cold mDNS discovery alone; a second after the Node is gone);
* ``connected_ms``: from before the Node is made to its ``connected`` event: found by mDNS, TCP
  connected, KK handshake, offer/answer and ICE (host candidates) over that connection, DTLS,
  SCTP, the binding MAC, and one ping round trip on the bound channel (the path's RTT);
* ``first_byte_ms``: from the same start to the agent's ``Delivered`` for a first Text — the
  first application message there and back.

    lan_driver.py HOME NAME RUNS

prints one JSON line per run ({"event": "result", ...}) and closes the node after each (the
agent sees the device leave, and adopts the next connection).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peer_agent.config import NodeConfig
from peer_agent.mdns_browser import LanBrowser
from peer_agent.node import Node


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class TimingReporter:
    """When each event first happened (ms after ``t0``), and a way to wait for one."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.at_ms: dict[str, float] = {}
        self.fields: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()

    def emit(self, event: str, **fields: Any) -> None:
        if event not in self.at_ms:
            self.at_ms[event] = (time.perf_counter() - self.t0) * 1000
            self.fields[event] = fields
        self._changed.set()

    async def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while event not in self.at_ms:
                self._changed.clear()
                await self._changed.wait()
        return self.fields[event]


async def one_run(home: Path, name: str, downloads: Path) -> dict[str, Any]:
    config = NodeConfig(home=home, name="Phone", device="cli", auto_accept=True, downloads=downloads)
    probe = Node(config, TimingReporter(time.perf_counter()))
    record = probe.book.find(name)
    await probe.close()
    assert record is not None, f"no pairing called {name!r} in {home}"

    # The node first, from nothing (its own fresh mDNS browser, empty cache)...
    t0 = time.perf_counter()
    reporter = TimingReporter(t0)
    node = Node(config, reporter)
    try:
        node.maintain(record, give_up_after=30)
        connected = await reporter.wait_for("connected", 40)
        session = node.sessions[record.peer_key]
        await session.send_text("first byte")
        first_byte_ms = (time.perf_counter() - t0) * 1000
    finally:
        await node.close()
    # ...then, apart from it, a cold mDNS discovery alone: a fresh browser until the agent's
    # service is found and resolved. (In this order, so that no answer of the agent's to the
    # discovery can have primed anything the node then sees.)
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    browser = LanBrowser()
    await browser.start()
    found = await browser.find([record], 10)
    found_ms = (time.perf_counter() - started) * 1000
    await browser.close()
    if found is None:
        return {"ok": False, "why": "not found by mDNS"}
    return {"ok": True, "found_ms": round(found_ms, 2), "connected_ms": round(reporter.at_ms["connected"], 2),
            "first_byte_ms": round(first_byte_ms, 2), "path": connected["path"]}


async def main(home: Path, name: str, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pb-lan-driver-") as downloads:
        for _ in range(runs):
            emit("result", **await one_run(home, name, Path(downloads)))
            await asyncio.sleep(1.0)  # the agent notices the device left before it comes back


if __name__ == "__main__":
    try:  # the loop `peerbeam` itself runs on (cli._run)
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
