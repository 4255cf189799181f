"""A device's WebSocket to the signaling server: typed messages in, typed messages out."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import TypeVar

import aiohttp
import msgspec

from signaling.schema import (
    MAX_FRAME_BYTES,
    ClientMessage,
    Error,
    ErrorCode,
    ServerMessage,
    SchemaError,
    decode_server,
    encode,
)

from .errors import PeerGone, ServerRefused, ServerUnreachable

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=ServerMessage)


def ws_url(origin: str) -> str:
    """``http://host:port`` → ``ws://host:port/v1/ws`` (https → wss)."""
    origin = origin.rstrip("/")
    if origin.startswith("https://"):
        return "wss://" + origin[len("https://"):] + "/v1/ws"
    if origin.startswith("http://"):
        return "ws://" + origin[len("http://"):] + "/v1/ws"
    raise ServerUnreachable(f"The server address {origin!r} must start with http:// or https://.")


class SignalClient:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self._ws = ws
        self._closed = False

    @classmethod
    async def connect(cls, origin: str, *, timeout: float = 10.0) -> SignalClient:
        url = ws_url(origin)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=timeout))
        try:
            ws = await session.ws_connect(url, heartbeat=5.0, max_msg_size=MAX_FRAME_BYTES, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            if exc.status in (429, 503):
                # The server answered, and said "not now": not an unreachable server.
                raise ServerRefused(
                    "The signaling server is refusing new connections from this address for now "
                    "(too many at once). peerbeam retries; if it persists, close other sessions.",
                    code=ErrorCode.RATE_LIMITED,
                ) from None
            raise ServerUnreachable(
                f"The signaling server at {origin} refused the connection (HTTP {exc.status})."
            ) from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            await session.close()
            raise ServerUnreachable(
                f"Cannot reach the signaling server at {origin} ({type(exc).__name__}). "
                "Check the address and that the server is running."
            ) from None
        return cls(session, ws)

    async def send(self, message: ClientMessage) -> None:
        if self._closed or self._ws.closed:
            raise PeerGone("The connection to the signaling server is closed.")
        try:
            await self._ws.send_str(encode(message).decode())
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise PeerGone(f"The connection to the signaling server broke ({type(exc).__name__}).") from None

    async def recv(self) -> ServerMessage | None:
        """The next message, or None when the server closed the socket."""
        while True:
            msg = await self._ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    return decode_server(msg.data)
                except SchemaError as exc:
                    # A server speaking another schema version: say so, keep the socket.
                    logger.warning("ignored a server message that does not fit the schema: %s", exc.code)
                    continue
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return None
            if msg.type == aiohttp.WSMsgType.ERROR:
                return None

    async def expect(self, *types: type[msgspec.Struct], timeout: float | None) -> ServerMessage:
        """Wait for one of ``types``; a server Error becomes ServerRefused."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv()
                if msg is None:
                    raise PeerGone("The signaling server closed the connection.")
                if isinstance(msg, types):
                    return msg
                if isinstance(msg, Error):
                    raise ServerRefused(msg.message, code=msg.code)
                logger.debug("ignored %s while waiting for %s", type(msg).__name__, types)

    async def expect_one(self, kind: type[M], *, timeout: float | None) -> M:
        msg = await self.expect(kind, timeout=timeout)
        assert isinstance(msg, kind)
        return msg

    @property
    def closed(self) -> bool:
        return self._closed or self._ws.closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._ws.close()
        finally:
            await self._session.close()

    async def __aenter__(self) -> SignalClient:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
