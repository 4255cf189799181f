"""The local control socket: how `peerbeam send` and friends reach the running process.

A Unix socket in the config dir, 0600 inside a 0700 directory, so only this user can drive
it. One JSON request per connection, one JSON reply, each a single line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from signaling.schema import ErrorCode

from .errors import PeerbeamError

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024


class NoDaemon(PeerbeamError):
    """No peerbeam process is running for this user. Start `peerbeam agent`,
    `peerbeam join LINK` or `peerbeam connect NAME` first."""

    code = ErrorCode.PEER_GONE


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists():
            # A socket nobody answers on is left over from a crash; a live one means another
            # process already serves this config dir.
            try:
                _, writer = await asyncio.open_unix_connection(str(self.path))
            except (ConnectionRefusedError, FileNotFoundError):
                self.path.unlink(missing_ok=True)
            else:
                writer.close()
                raise PeerbeamError(
                    f"Another peerbeam process already runs with the config dir {self.path.parent}.",
                    code=ErrorCode.ALREADY_BOUND,
                )
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if len(line) > MAX_REQUEST:
                raise ValueError("request too large")
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
            try:
                reply = await self._handler(request)
            except PeerbeamError as exc:
                reply = {"ok": False, "code": str(exc.code), "message": exc.message}
        except (ValueError, TimeoutError) as exc:
            reply = {"ok": False, "code": "bad_message", "message": f"Bad control request: {exc}"}
        except Exception as exc:
            logger.exception("control request failed")
            reply = {"ok": False, "code": "internal", "message": f"Internal error: {type(exc).__name__}"}
        with contextlib.suppress(ConnectionError):
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)


async def request(path: Path, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the running process; raises NoDaemon when there is none."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        raise NoDaemon() from None
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line:
        raise PeerbeamError("The running peerbeam process closed the control socket.", code=ErrorCode.INTERNAL)
    reply: dict[str, Any] = json.loads(line)
    return reply
