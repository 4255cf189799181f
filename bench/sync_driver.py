"""One side of the page-sync benchmark (bench/sync.py): a Node in-process, every event stamped.

Runs inside a lab namespace (never in the host namespace)::

    python bench/sync_driver.py pc HOME ORIGIN    # hosts pairing at ORIGIN (auto-accept), owns the session
    python bench/sync_driver.py phone HOME        # joins with the link it is given

Every line it prints is one JSON event with ``mono`` = ``time.monotonic()`` when it happened.
CLOCK_MONOTONIC is one clock for the whole machine, namespaces included, so a stamp taken here
and one taken by the other driver give a one-way latency. Events: the node's own (``qr``,
``paired``, ``connected``, ``sync_started``, ``sync_reader``, ``error``, ``disconnected``),
``applied`` (a remote change reached the document: ``scroll`` = the document's scroll values,
``{tab: {"n", "by"}}``) and ``message`` (a text arrived: ``text``).

Commands, one JSON line each on stdin, each answered by its own event:

* ``{"cmd": "join", "url"}`` (phone) → ``joined``;
* ``{"cmd": "start", "url"}`` (pc): `peerbeam sync start URL` → ``started`` (``tab``, ``doc``);
* ``{"cmd": "ops", "series", "count", "interval", "tab"}``: ``count`` scroll operations, one
  every ``interval`` seconds on an absolute schedule (0: back to back, yielding to the event
  loop once between two), as the extension's `sync.op` makes them → ``ops_done`` with
  ``ops`` = ``[[n, mono], ...]`` (``n``: the scroll counter the operation wrote);
* ``{"cmd": "texts", "series", "count", "interval"}``: ``count`` plain `text` messages on the
  same channel, fire and forget, same schedule → ``texts_done`` with ``sent`` =
  ``[[text, mono], ...]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto.link import parse_link
from peer_agent.config import NodeConfig
from peer_agent.node import Node
from signaling.schema import Text

SHOWN = ("qr", "paired", "connected", "sync_started", "sync_reader", "error", "disconnected", "sync_stopped")


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class StampReporter:
    """The node's reporter: the stamp first, then only what the benchmark reads."""

    def emit(self, event: str, **fields: Any) -> None:
        mono = time.monotonic()
        if event == "sync_applied":
            scroll = fields["state"]["scroll"]
            emit("applied", mono=mono, scroll={tab: {"n": v["n"], "by": v["by"]} for tab, v in scroll.items()})
        elif event == "message":
            emit("message", mono=mono, text=fields["text"])
        elif event in SHOWN:
            emit(event, mono=mono, **{k: v for k, v in fields.items() if k in ("name", "url", "code", "message",
                                                                                 "doc", "by")})


async def paced(count: int, interval: float) -> AsyncIterator[int]:
    """Yield ``count`` times on an absolute schedule (back to back: one loop turn between)."""
    start = time.monotonic()
    for i in range(count):
        if interval > 0:
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
        else:
            await asyncio.sleep(0)
        yield i


class Driver:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def join(self, url: str) -> dict[str, Any]:
        record = await self.node.join(parse_link(url))
        return {"name": record.peer_name}

    async def start(self, url: str) -> dict[str, Any]:
        result = await self.node.syncer.start(None, url=url)
        return {"tab": result["tab"], "doc": result["doc"]}

    async def ops(self, series: str, count: int, interval: float, tab: str) -> dict[str, Any]:
        syncer = self.node.syncer
        (peer_key,) = self.node.sessions
        shared = syncer.load(peer_key)
        assert shared is not None, "no sync session"
        done: list[tuple[float, float]] = []
        async for i in paced(count, interval):
            mono = time.monotonic()
            syncer.apply(None, "scroll", {"tab": tab, "fraction": (i % 1000) / 1000, "block": i % 200,
                                          "offset": (i % 7) / 7})
            done.append((shared.doc.state()["scroll"][tab]["n"], mono))
        return {"series": series, "ops": done}

    async def texts(self, series: str, count: int, interval: float) -> dict[str, Any]:
        (session,) = self.node.sessions.values()
        sent: list[tuple[str, float]] = []
        async for i in paced(count, interval):
            text = f"{series} {i}"
            mono = time.monotonic()
            session.link.send(Text(id=f"b{i}-{series}"[:64], text=text))
            sent.append((text, mono))
        return {"series": series, "sent": sent}


async def main(role: str, home: str, origin: str | None) -> None:
    config = NodeConfig(home=Path(home), name="Bench PC" if role == "pc" else "Bench Phone",
                        device="pc" if role == "pc" else "cli", auto_accept=True, lan=False)
    node = Node(config, StampReporter())
    await node.start()
    if role == "pc":
        assert origin is not None
        node.spawn(node.host_pairing(origin))
    driver = Driver(node)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    emit("ready", role=role, mono=time.monotonic())
    try:
        while line := await commands.readline():
            request = json.loads(line)
            name = request.pop("cmd")
            emit(f"{name}_done" if name in ("ops", "texts") else {"join": "joined", "start": "started"}[name],
                 mono=time.monotonic(), **await getattr(driver, name)(**request))
    finally:
        await node.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    role = sys.argv[1]
    if role not in ("pc", "phone"):
        raise SystemExit("role: pc or phone")
    import uvloop  # as the CLI runs the agent and the peer

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(role, sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
