"""The joining side of the pairing benchmark: `peerbeam join`, in-process and timed.

Runs inside the lab's phone namespace (never in the host namespace). peer_agent is imported
once, so Python start-up and imports are not counted; each pairing then does what
`peerbeam join URL` does after parsing its argument — a fresh Node with a fresh config dir
(so a fresh identity key), ``node.start()``, ``node.join(link)`` — and times it.

Reads one JSON line per run on stdin, {"url": ..., "name": ...}, and prints one line:

    {"event": "result", "ok": true, "open_ms": ..., "rtt_ms": ..., "phases": {...}}

* ``open_ms``: from before the Node is made to ``join`` returning, i.e. the data channel open
  and bound (the agent's binding MAC verified);
* ``rtt_ms``: from the same start to the agent's ``Delivered`` for a first Text — one full
  round trip over the bound channel;
* ``phases``: when the node reported ``joined`` (WebSocket up, token accepted by the server),
  ``verify`` (Noise NK handshake done through the server) and ``paired`` (channel bound).

Then the session is unpaired (so the agent does not keep a rendezvous socket open, retrying
a device that is gone) and the node closed, before the result line is printed. With
``--keep-pairings`` the node is closed without unpairing, as a phone that walks away would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crypto.link import parse_link
from peer_agent.config import NodeConfig
from peer_agent.errors import PeerbeamError
from peer_agent.node import Node


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class TimingReporter:
    """Keeps, for each event the node reports, when it first happened (ms after ``t0``)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.at_ms: dict[str, float] = {}

    def emit(self, event: str, **fields: Any) -> None:
        self.at_ms.setdefault(event, (time.perf_counter() - self.t0) * 1000)


async def one_join(url: str, name: str, keep_pairing: bool) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="pb-bench-join-"))
    t0 = time.perf_counter()
    reporter = TimingReporter(t0)
    node = Node(NodeConfig(home=home, name=name, device="cli"), reporter)
    try:
        await node.start()
        record = await node.join(parse_link(url))
        t_open = time.perf_counter()
        session = node.sessions[record.peer_key]
        await session.send_text("ping")
        t_delivered = time.perf_counter()
        if not keep_pairing:
            await session.unpair()
    finally:
        await node.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "ok": True,
        "open_ms": (t_open - t0) * 1000,
        "rtt_ms": (t_delivered - t0) * 1000,
        "phases": {
            "joined_ms": reporter.at_ms.get("joined"),
            "verify_ms": reporter.at_ms.get("verify"),
            "paired_ms": reporter.at_ms.get("paired"),
            "open_ms": (t_open - t0) * 1000,
            "round_trip_only_ms": (t_delivered - t_open) * 1000,
        },
        "events": sorted(reporter.at_ms, key=reporter.at_ms.__getitem__),
    }


async def serve(loop_name: str, keep_pairing: bool) -> None:
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    emit("ready", loop=loop_name)
    while line := await commands.readline():
        request = json.loads(line)
        try:
            emit("result", **await one_join(request["url"], request["name"], keep_pairing))
        except PeerbeamError as exc:
            # rate_limited is retried by the orchestrator (the token is not spent by a refusal).
            emit("result", ok=False, code=str(exc.code), message=exc.message)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="asyncio")
    parser.add_argument("--keep-pairings", action="store_true",
                        help="close without unpairing: the agent keeps trying to reconnect")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(serve(args.loop, args.keep_pairings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
