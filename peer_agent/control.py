"""The local control socket: how `peerbeam send` and friends reach the running process.

A Unix socket in the config dir, 0600 inside a 0700 directory, so only this user can drive
it. One JSON request per connection and one JSON reply (a line with ``ok``), each a single
line; long commands (`send FILE`) stream ``event`` lines before the reply, and closing the
connection early cancels what they asked for. The browser extension's native host keeps its
connection open and talks both ways (``Conn.recv``).
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

MAX_REQUEST = 8 * 1024 * 1024  # a page from the extension may carry a screenshot


class Conn:
    """One control connection as the handler sees it: lines out, lines in, and whether the
    client is still there."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=64)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line or len(line) > MAX_REQUEST:
                    break
                try:
                    value = json.loads(line)
                except ValueError:
                    break
                if isinstance(value, dict):
                    await self._lines.put(value)
        except (ConnectionError, ValueError):  # ValueError: a line over the reader's limit
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)
            with contextlib.suppress(asyncio.QueueFull):
                self._lines.put_nowait(None)

    async def recv(self) -> dict[str, Any] | None:
        """The next line from the client, or None once it has gone."""
        if self.closed.done() and self._lines.empty():
            return None
        return await self._lines.get()

    def send(self, value: dict[str, Any]) -> None:
        if self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            self._writer.write(json.dumps(value, default=str).encode() + b"\n")

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._writer.drain()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


Handler = Callable[[dict[str, Any], Conn], Awaitable[dict[str, Any]]]


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
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_REQUEST)
        finally:
            os.umask(old)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(reader, writer)
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if len(line) > MAX_REQUEST:
                raise ValueError("request too large")
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
            conn.start_reading()
            try:
                reply = await self._handler(request, conn)
            except PeerbeamError as exc:
                reply = {"ok": False, "code": str(exc.code), "message": exc.message}
        except (ValueError, TimeoutError) as exc:
            reply = {"ok": False, "code": "bad_message", "message": f"Bad control request: {exc}"}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("control request failed")
            reply = {"ok": False, "code": "internal", "message": f"Internal error: {type(exc).__name__}"}
        finally:
            conn.stop()
        conn.send(reply)
        await conn.drain()
        with contextlib.suppress(ConnectionError):
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)


async def request(path: Path, payload: dict[str, Any], timeout: float | None = 30.0,
                  on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Send one request to the running process and return its reply; ``event`` lines before
    the reply go to ``on_event``. ``timeout`` bounds each wait for a line. Raises NoDaemon when
    no process runs; cancelling this closes the connection, which cancels the command."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST)
    except (FileNotFoundError, ConnectionRefusedError):
        raise NoDaemon() from None
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise PeerbeamError("The running peerbeam process closed the control socket.",
                                    code=ErrorCode.INTERNAL)
            reply: dict[str, Any] = json.loads(line)
            if "ok" in reply:
                return reply
            if on_event is not None:
                on_event(reply)
    finally:
        writer.close()
