"""Two bound RtcLinks in one lab namespace; a message reaches one before it has a handler.

The node attaches the session's handler only after ``establish`` returns and the pairing
record is written, so the other device's first message can arrive in between. Prints
{"event": "received", "ids": [...]} with the ids in the order the handler saw them.

Run inside a lab namespace only (aiortc; iceServers=[] explicitly, through RtcLink).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from peer_agent.rtc import BindingContext, RtcLink
from signaling.schema import ChannelMessage, Text

DEADLINE_S = 20.0


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run() -> None:
    handshake_hash, chaining_key = os.urandom(32), os.urandom(32)
    a = RtcLink([], BindingContext("initiator", handshake_hash, chaining_key))
    b = RtcLink([], BindingContext("responder", handshake_hash, chaining_key))
    try:
        answer = await b.accept_offer(await a.make_offer())
        await a.accept_answer(answer)
        await asyncio.wait_for(asyncio.gather(a.wait_bound(DEADLINE_S), b.wait_bound(DEADLINE_S)), DEADLINE_S)

        # Listen beside RtcLink's own listener (registered first, so it has run by then): this
        # tells when "early" has been read by `a`, which has no handler yet.
        arrived = asyncio.get_running_loop().create_future()
        assert a._channel is not None
        a._channel.on("message", lambda _data: arrived.done() or arrived.set_result(None))
        b.send(Text(id="early", text="before the handler"))
        await asyncio.wait_for(arrived, DEADLINE_S)

        seen: list[str] = []
        both = asyncio.get_running_loop().create_future()

        def handler(message: ChannelMessage) -> None:
            if isinstance(message, Text):
                seen.append(message.id)
                if len(seen) == 2 and not both.done():
                    both.set_result(None)

        a.on_message = handler
        b.send(Text(id="late", text="after the handler"))
        try:
            await asyncio.wait_for(both, 5)
        except TimeoutError:
            pass  # reported below: the test shows what did arrive
        emit("received", ids=seen)
    finally:
        await a.close()
        await b.close()


def main() -> int:
    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 -- reported as an event, shown by the test
        emit("error", error=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
