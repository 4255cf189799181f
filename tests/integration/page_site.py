"""Serve the hostile test site (tests/integration/test_fetch_images.py) inside a lab namespace.

Run as ``python -m tests.integration.page_site HOST PORT``; prints one JSON line
``{"event": "site", "url": ...}`` once it listens, then serves until stopped.
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from tests.integration.test_fetch_images import make_app


async def main(host: str, port: int) -> None:
    runner = web.AppRunner(make_app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(json.dumps({"event": "site", "url": f"http://{host}:{port}"}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
