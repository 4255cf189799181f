"""A paired device that floods the agent with texts (for the rate-limit test).

    python flood_peer.py LINK HOME COUNT

Joins like `peerbeam join`, then sends COUNT texts as fast as the channel takes them and
prints {"event": "flooded"}; then stays connected (its control socket serves `send`).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from crypto.link import parse_link
from peer_agent.config import NodeConfig
from peer_agent.node import Node
from peer_agent.report import JsonReporter
from signaling.schema import Text


async def main(link: str, home: str, count: int) -> None:
    reporter = JsonReporter()
    node = Node(NodeConfig(home=Path(home), name="Flooder", device="cli"), reporter)
    await node.start()
    try:
        record = await node.join(parse_link(link))
        session = node.sessions[record.peer_key]
        for i in range(count):
            session.link.send(Text(id=f"f{i}", text=f"flood {i}"))
        reporter.emit("flooded", count=count)
        await asyncio.Event().wait()
    finally:
        await node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
