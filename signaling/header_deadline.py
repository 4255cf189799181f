"""A deadline on the first request's HTTP headers (the slowloris defence aiohttp lacks).

aiohttp's ``RequestHandler`` waits for headers for as long as bytes keep trickling in. This
``asyncio.Protocol`` sits between the transport and aiohttp's handler, forwards every callback
unchanged, and closes the transport if the end of the first request's headers (``CRLF CRLF``,
RFC 9112 §2.1) has not arrived within the deadline. Later requests on a kept-alive connection
are bounded by aiohttp's keep-alive timeout, which closes a connection that is waiting for a
request once it has been idle that long.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"


class HeaderDeadline(asyncio.Protocol):
    def __init__(
        self, inner: asyncio.Protocol, deadline: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._inner = inner
        self._deadline = deadline
        self._loop = loop
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        # The last bytes seen, so that CRLF CRLF split across two reads is still found.
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = self._loop.call_later(self._deadline, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            window = self._tail + data
            if _END_OF_HEADERS in window:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = window[-(len(_END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        log.info("closing a connection: request headers incomplete after %.1f s", self._deadline)
        # Nothing was answered yet, so there is nothing to flush: abort frees the socket at once
        # (and connection_lost still reaches aiohttp's handler).
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()
