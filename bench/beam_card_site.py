"""The local web site of the beam-to-card benchmark: a page and its photos, from memory, timed.

Run inside the lab's pc namespace (never in the host namespace):

    python bench/beam_card_site.py DIR HOST PORT

Every file under DIR is read into memory once (so disk reads are not part of what the agent's
fetch costs) and served at its relative path with a Content-Length. Prints one JSON line
``{"event": "site", "url": ...}`` once it listens, then one line per response:

    {"event": "served", "path": "/photos/01.jpg", "start": ..., "end": ..., "bytes": ...}

``start`` is when the request reached the handler and ``end`` when the last byte was handed
to the kernel (``time.time()``: the bench compares it with the agent's and the phone's event
timestamps, all on the same machine's clock).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import sys
import time
from pathlib import Path

from aiohttp import web


def load(root: Path) -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files["/" + path.relative_to(root).as_posix()] = (path.read_bytes(), kind)
    return files


def make_app(files: dict[str, tuple[bytes, str]]) -> web.Application:
    async def serve(request: web.Request) -> web.StreamResponse:
        start = time.time()
        found = files.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        response = web.StreamResponse(headers={"Content-Type": kind, "Content-Length": str(len(body))})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        print(json.dumps({"event": "served", "path": request.path, "start": start, "end": time.time(),
                          "bytes": len(body)}), flush=True)
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


async def main(root: Path, host: str, port: int) -> None:
    runner = web.AppRunner(make_app(load(root)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(json.dumps({"event": "site", "url": f"http://{host}:{port}"}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
