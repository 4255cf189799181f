"""The signaling server: a thin aiohttp shell around ``rooms.Rooms``, thin and blind.

It checks sealed pairing tokens, keeps the ledger of used ones, pairs sockets into rooms and
routes opaque ``relay`` bytes between the two members of a room. It never sees keys, SDP, ICE
candidates or anything else inside a relay (DESIGN "Pairing", "Reconnect", "Hardening").

Endpoints: ``GET /v1/ws`` (the WebSocket; JSON text frames of ``schema.ClientMessage`` /
``schema.ServerMessage``), ``GET /healthz``, and the phone web app: ``GET /p`` (the QR link's
landing page) and ``GET /app/...`` (webapp.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from crypto.errors import TokenError
from crypto.tokens import TokenSealer

from . import webapp
from .config import ServerConfig
from .errors import SignalingError, error
from .header_deadline import HeaderDeadline
from .ratelimit import ConcurrencyLimit, RateLimiter, TokenBucket, client_key
from .rooms import Role, Rooms, Send
from .schema import (
    ClientMessage,
    Error,
    ErrorCode,
    PairCreate,
    PairCreated,
    PairJoin,
    PairPeek,
    PairRefresh,
    Rendezvous,
    SchemaError,
    ServerMessage,
    decode_client,
    encode,
)
from .store import MemoryStore, Store
from .turn import ice_servers

log = logging.getLogger(__name__)

# The wire error sentence may quote msgspec's description of what was wrong; keep it short.
_MAX_DETAIL = 300
_TOKEN_CODES: Final = {
    ErrorCode.BAD_TOKEN.value: ErrorCode.BAD_TOKEN,
    ErrorCode.TOKEN_EXPIRED.value: ErrorCode.TOKEN_EXPIRED,
}

class _Connection:
    __slots__ = ("id", "key", "ws", "relay_bucket", "authenticated", "errors")

    def __init__(
        self, conn_id: int, key: str, ws: web.WebSocketResponse, relay_bucket: TokenBucket
    ) -> None:
        self.id = conn_id
        self.key = key  # the rate-limit key of the client's address
        self.ws = ws
        self.relay_bucket = relay_bucket
        self.authenticated = False
        self.errors = 0


class Signaling:
    """The server's state for one ``web.Application``: rooms, sockets, limits, tokens."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        *,
        owns_store: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self._owns_store = owns_store
        # Wall clock: token expiry and TURN expiry are absolute times other machines read.
        self._clock = clock
        if config.token_keys is None:
            self._sealer = TokenSealer.generate(ttl=config.token_ttl)
        else:
            kid = config.token_kid if config.token_kid is not None else max(config.token_keys)
            self._sealer = TokenSealer(config.token_keys, kid, ttl=config.token_ttl)
        self.rooms = Rooms()
        self._conns: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        keys = config.rate_limit_keys
        self._sockets: ConcurrencyLimit[str] = ConcurrencyLimit(config.max_sockets_per_ip)
        self._new_sockets: RateLimiter[str] = RateLimiter.per_minute(
            config.connections_per_minute, keys
        )
        self._token_requests: RateLimiter[str] = RateLimiter.per_minute(
            config.token_requests_per_minute, keys
        )
        self._joins: RateLimiter[str] = RateLimiter.per_minute(config.joins_per_minute, keys)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # ---- the WebSocket endpoint ------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        key = client_key(_peer_host(request))
        now = asyncio.get_running_loop().time()
        if self._sockets.count(
            key
        ) >= self.config.max_sockets_per_ip or not self._new_sockets.allow(key, now):
            log.info("refused a WebSocket: per-address limit")
            return _refusal(
                429, "Too many connections from your address: wait a minute and try again."
            )
        if len(self._conns) >= self.config.max_sockets:
            log.warning("refused a WebSocket: %d sockets open", len(self._conns))
            return _refusal(503, "The server is busy: try again in a minute.")
        self._sockets.acquire(key)
        try:
            ws = web.WebSocketResponse(
                # aiohttp refuses a message whose size is >= max_msg_size (reader: ``bytes_to_read
                # >= max_msg_size``), so +1 lets a frame of exactly max_frame through, as the
                # schema's own cap (``len > MAX_FRAME_BYTES``) does.
                max_msg_size=self.config.max_frame + 1,
                heartbeat=self.config.heartbeat,
                timeout=self.config.close_timeout,
                # No permessage-deflate: JSON around ciphertext does not compress, and inflating
                # is work a hostile client could ask for.
                compress=False,
            )
            await ws.prepare(request)
            rate = self.config.relay_per_second
            conn = _Connection(
                next(self._ids), key, ws, TokenBucket.full(rate, max(1.0, rate), now)
            )
            self._conns[conn.id] = conn
            log.info("conn %d: open", conn.id)
            try:
                await self._serve(conn)
            finally:
                del self._conns[conn.id]
                await self._deliver(self.rooms.leave(conn.id))
                log.info("conn %d: closed (code %s)", conn.id, ws.close_code)
            return ws
        finally:
            self._sockets.release(key)

    async def _serve(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.auth_deadline
        ws = conn.ws
        while not ws.closed:
            timeout: float | None = None
            if not conn.authenticated:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    await self._close(conn, ErrorCode.AUTH_TIMEOUT)
                    return
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                continue  # the loop head sees the deadline has passed
            if msg.type is WSMsgType.TEXT:
                await self._on_text(conn, msg.data)
            elif msg.type is WSMsgType.BINARY:
                await self._protocol_error(
                    conn, ErrorCode.BAD_MESSAGE, "Binary frames are not part of this protocol."
                )
            else:
                # CLOSE / CLOSING / CLOSED, or ERROR (e.g. a frame over max_frame: aiohttp has
                # already closed with 1009, RFC 6455 §7.4.1).
                if msg.type is WSMsgType.ERROR:
                    log.info("conn %d: WebSocket error %s", conn.id, type(msg.data).__name__)
                return

    async def _on_text(self, conn: _Connection, data: str) -> None:
        try:
            message = decode_client(data)
        except SchemaError as exc:
            await self._protocol_error(conn, exc.code, exc.message[:_MAX_DETAIL])
            return
        try:
            await self._dispatch(conn, message)
        except SignalingError as exc:
            # DEBUG: a client can ask for refusals as fast as it can send; logs must not follow.
            log.debug("conn %d: %s refused: %s", conn.id, type(message).__name__, exc.code.value)
            await self._send(conn, exc.to_message())
        if not conn.authenticated and self.rooms.role(conn.id) is not Role.NONE:
            conn.authenticated = True

    async def _dispatch(self, conn: _Connection, message: ClientMessage) -> None:
        refused = self.rooms.refusal(conn.id, type(message))
        if refused is not None:
            raise SignalingError(refused)
        if isinstance(message, PairCreate):
            self._limit(self._token_requests, conn)
            room = self.rooms.create_pairing(conn.id, message.name)
            log.info("conn %d: created a pairing room", conn.id)
            await self._send(conn, self._pair_created(room))
        elif isinstance(message, PairRefresh):
            room = self.rooms.refresh(conn.id)
            self._limit(self._token_requests, conn)
            await self._send(conn, self._pair_created(room))
        elif isinstance(message, PairJoin):
            await self._pair_join(conn, message)
        elif isinstance(message, PairPeek):
            await self._pair_peek(conn, message)
        elif isinstance(message, Rendezvous):
            self._limit(self._joins, conn)
            now = self._clock()
            sends = self.rooms.rendezvous(
                message.rid, conn.id, lambda: ice_servers(self.config, now)
            )
            log.info("conn %d: rendezvous %s", conn.id, _outcome(conn.id, sends))
            await self._deliver(sends)
        else:
            if not conn.relay_bucket.take(asyncio.get_running_loop().time()):
                raise SignalingError(ErrorCode.RATE_LIMITED, "Too many messages: slow down.")
            await self._deliver(self.rooms.relay(conn.id, message.data))

    async def _pair_join(self, conn: _Connection, message: PairJoin) -> None:
        self._limit(self._joins, conn)
        now = self._clock()
        try:
            claims = self._sealer.open(message.token, now)
        except TokenError as exc:
            raise SignalingError(
                _TOKEN_CODES.get(exc.code, ErrorCode.BAD_TOKEN), exc.message
            ) from None
        # Remember the id exactly as long as the token could still be opened (DESIGN "Pairing" 1).
        first_use = await self.store.use_once(claims.token_id, claims.expires_at - now)
        sends = self.rooms.join_pairing(
            claims.room,
            conn.id,
            message.name,
            first_use=first_use,
            ice_servers=lambda: ice_servers(self.config, now),
        )
        log.info("conn %d: pair.join %s", conn.id, _outcome(conn.id, sends))
        await self._deliver(sends)

    async def _pair_peek(self, conn: _Connection, message: PairPeek) -> None:
        # The same budget as joins: a peek answers "is this token alive", which is as much as
        # a join tells a guesser.
        self._limit(self._joins, conn)
        try:
            claims = self._sealer.open(message.token, self._clock())
        except TokenError as exc:
            raise SignalingError(
                _TOKEN_CODES.get(exc.code, ErrorCode.BAD_TOKEN), exc.message
            ) from None
        used = await self.store.seen(claims.token_id)
        sends = self.rooms.peek(claims.room, conn.id, used=used, expires_at=claims.expires_at)
        log.info("conn %d: pair.peek %s", conn.id, _outcome(conn.id, sends))
        await self._deliver(sends)

    def _pair_created(self, room: bytes) -> PairCreated:
        now = self._clock()
        token, claims = self._sealer.seal(room, now)
        return PairCreated(
            token=token, expires_at=claims.expires_at, ice_servers=ice_servers(self.config, now)
        )

    def _limit(self, limiter: RateLimiter[str], conn: _Connection) -> None:
        if not limiter.allow(conn.key, asyncio.get_running_loop().time()):
            raise SignalingError(ErrorCode.RATE_LIMITED)

    async def _protocol_error(self, conn: _Connection, code: ErrorCode, sentence: str) -> None:
        conn.errors += 1
        log.info("conn %d: protocol error %s (%d)", conn.id, code.value, conn.errors)
        await self._send(conn, error(code, sentence))
        if conn.errors >= self.config.max_protocol_errors:
            await conn.ws.close(
                code=WSCloseCode.POLICY_VIOLATION, message=b"too many protocol errors"
            )

    async def _close(self, conn: _Connection, code: ErrorCode) -> None:
        log.info("conn %d: closing (%s)", conn.id, code.value)
        await self._send(conn, error(code))
        await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=code.value.encode())

    async def _deliver(self, sends: list[Send]) -> None:
        for send in sends:
            target = self._conns.get(send.to)
            if target is not None:
                await self._send(target, send.message)

    async def _send(self, conn: _Connection, message: ServerMessage) -> None:
        if conn.ws.closed:
            return
        try:
            await conn.ws.send_frame(encode(message), WSMsgType.TEXT)
        except (ConnectionError, RuntimeError) as exc:
            # The socket is going away; its own handler notices and cleans up.
            log.debug("conn %d: send failed (%s)", conn.id, type(exc).__name__)

    # ---- lifecycle -------------------------------------------------------------------------

    async def close_sockets(self) -> None:
        conns = list(self._conns.values())
        await asyncio.gather(
            *(c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for c in conns),
            return_exceptions=True,
        )

    async def close_store(self) -> None:
        if self._owns_store:
            await self.store.close()


SIGNALING: Final = web.AppKey("signaling", Signaling)


def _outcome(conn_id: int, sends: list[Send]) -> str:
    """For the log: the error code or message kind this connection was answered with."""
    for send in sends:
        if send.to == conn_id:
            message = send.message
            return (
                f"refused ({message.code.value})"
                if isinstance(message, Error)
                else type(message).__name__
            )
    return "answered"


def _peer_host(request: web.Request) -> str:
    # The address the TCP connection comes from; X-Forwarded-For is never trusted.
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return "unknown"


def _refusal(status: int, sentence: str) -> web.Response:
    body = encode(error(ErrorCode.RATE_LIMITED, sentence))
    return web.Response(status=status, body=body, content_type="application/json")


async def _websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[SIGNALING].websocket(request)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _on_shutdown(app: web.Application) -> None:
    await app[SIGNALING].close_sockets()


async def _on_cleanup(app: web.Application) -> None:
    await app[SIGNALING].close_store()


def build_app(
    config: ServerConfig, store: Store | None = None, *, clock: Callable[[], float] = time.time
) -> web.Application:
    """The aiohttp application. A given ``store`` is the caller's to close; a default one is ours.

    ``clock`` is the wall clock used for token and TURN expiry (tests inject one).
    """
    app = web.Application(
        client_max_size=config.client_max_size,
        # handler_args reach aiohttp's RequestHandler whichever runner serves the app.
        handler_args={
            "keepalive_timeout": config.keepalive,
            "max_line_size": 4096,
            "max_field_size": 4096,
            "max_headers": 64,
            # Access logs would record every client address and path; our own lines carry
            # connection ids only.
            "access_log": None,
        },
    )
    owns = store is None
    app[SIGNALING] = Signaling(
        config,
        store if store is not None else MemoryStore(config.store_max_keys),
        owns_store=owns,
        clock=clock,
    )
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/v1/ws", _websocket)
    webapp.add_routes(app)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


class RunningServer:
    """A started server; ``close()`` stops listening, closes every socket and is idempotent."""

    def __init__(self, app: web.Application, runner: web.AppRunner, server: asyncio.Server) -> None:
        self.app = app
        self._runner = runner
        self._server = server
        self._closed = False
        sockname = server.sockets[0].getsockname()
        self.port: int = sockname[1]
        self.host: str = _reachable(sockname[0])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.close()
        await self._runner.cleanup()
        await self._server.wait_closed()


def _reachable(host: str) -> str:
    # A wildcard bind is reachable locally through loopback; report that in the URL.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


async def start_server(
    config: ServerConfig, *, store: Store | None = None, clock: Callable[[], float] = time.time
) -> RunningServer:
    app = build_app(config, store, clock=clock)
    runner = web.AppRunner(app, shutdown_timeout=config.shutdown_timeout)
    await runner.setup()
    handler_factory = runner.server
    assert handler_factory is not None
    loop = asyncio.get_running_loop()
    try:
        # Our own listening socket instead of a TCPSite, so that each connection's protocol
        # can be wrapped in the header deadline guard.
        server = await loop.create_server(
            lambda: HeaderDeadline(handler_factory(), config.header_deadline, loop),
            host=config.host,
            port=config.port,
            reuse_address=True,
        )
    except BaseException:
        await runner.cleanup()
        raise
    running = RunningServer(app, runner, server)
    log.info("signaling server listening on %s", running.url)
    return running


async def serve_forever(
    config: ServerConfig, on_ready: Callable[[RunningServer], None] | None = None
) -> None:
    """Run until cancelled (Ctrl-C under ``asyncio.run``), then close cleanly."""
    running = await start_server(config)
    try:
        if on_ready is not None:
            on_ready(running)
        await asyncio.Event().wait()
    finally:
        await running.close()
