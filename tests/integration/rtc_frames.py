"""Two bound RtcLinks in one lab namespace; one streams 20 MB of binary frames to the other,
pacing itself with wait_writable(). Prints {"event": "streamed", ...}.

Run inside a lab namespace only (aiortc; iceServers=[] explicitly, through RtcLink).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from typing import Any

from peer_agent.frames import decode_frame, encode_frame, new_transfer_id
from peer_agent.rtc import BindingContext, RtcLink

TOTAL = 20 * 1024 * 1024
CHUNK = 64 * 1024 - 64  # payload; the frame header makes it ≤ 64 KiB


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run() -> None:
    hh, ck = os.urandom(32), os.urandom(32)
    a = RtcLink([], BindingContext("initiator", hh, ck))
    b = RtcLink([], BindingContext("responder", hh, ck))
    try:
        await a.accept_answer(await b.accept_offer(await a.make_offer()))
        await asyncio.gather(a.wait_bound(20), b.wait_bound(20))
        data = os.urandom(TOTAL)
        received = hashlib.sha256()
        count = 0
        done = asyncio.get_running_loop().create_future()
        next_offset = 0
        in_order = True

        def on_frame(raw: bytes) -> None:
            nonlocal count, next_offset, in_order
            frame = decode_frame(raw)
            in_order = in_order and frame.offset == next_offset
            next_offset = frame.end
            received.update(frame.payload)
            count += len(frame.payload)
            if count >= TOTAL and not done.done():
                done.set_result(None)

        b.on_frame = on_frame
        tid = new_transfer_id()
        max_buffered = 0
        waits = 0
        for offset in range(0, TOTAL, CHUNK):
            if a.buffered_amount > 0:
                waits += 1
            await a.wait_writable()
            a.send_frame(encode_frame(tid, offset, data[offset:offset + CHUNK]))
            max_buffered = max(max_buffered, a.buffered_amount)
        await asyncio.wait_for(done, 60)
        emit("streamed", bytes=count, sha_ok=received.hexdigest() == hashlib.sha256(data).hexdigest(),
             in_order=in_order, max_buffered=max_buffered, waits=waits)
    finally:
        await a.close()
        await b.close()


if __name__ == "__main__":
    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 -- reported as an event for the test
        emit("error", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
