"""Stands in for the peerbeam browser extension on the agent's control socket, for the phone's
pull test (test_phone_beam.py): it opens the link the extension's native host opens
(``{"cmd": "extension", ...}``) and answers every ``capture`` with one page report of URL and
no images, as the real extension does for a tab the user never clicked — the agent then fetches
the page itself. The real extension's capture path is proven in test_extension.py with Chromium.

Run as ``python -m tests.integration.extension_standin SOCKET URL``; prints
``{"event": "extension", ...}`` once the agent accepted the link, and one line per capture.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main(socket_path: str, url: str) -> None:
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=16 * 1024 * 1024)
    writer.write(json.dumps({"cmd": "extension", "origin": "chrome-extension://standin", "version": 1}).encode() + b"\n")
    await writer.drain()
    hello = json.loads(await reader.readline())
    print(json.dumps({"event": "extension", **hello}), flush=True)
    while line := await reader.readline():
        message = json.loads(line)
        if message.get("type") == "capture":
            page = {"url": url, "title": "Bad images", "images": []}
            writer.write(json.dumps({"type": "capture.result", "request_id": message["request_id"], "ok": True,
                                     "page": page}).encode() + b"\n")
            await writer.drain()
            print(json.dumps({"event": "captured", "url": url}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
