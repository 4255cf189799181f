"""The real signaling server on 127.0.0.1 (port 0), driven by real aiohttp WebSocket clients.

Every hostile input gets its own test, checks the stable error code, and then proves that the
server still pairs another client. Other client addresses come from 127.0.0.2 (all of
127.0.0.0/8 is loopback on Linux).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import msgspec
import pytest

from crypto.keys import b64u_decode, b64u_encode
from signaling.config import ServerConfig
from signaling.schema import (
    Error,
    ErrorCode,
    JoinRefused,
    PairCreate,
    PairCreated,
    PairJoin,
    PairJoined,
    PairRefresh,
    PeerJoined,
    PeerLeft,
    Relay,
    Rendezvous,
    RendezvousMatched,
    RendezvousWaiting,
    ServerMessage,
    decode_server,
    encode,
)
from signaling.server import SIGNALING, RunningServer, start_server
from signaling.turn import verify_turn_password

T = TypeVar("T")
OTHER_IP = "127.0.0.2"
RECV_TIMEOUT = 5.0


class Clock:
    """Injectable wall clock for token expiry."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Client:
    """One device: a WebSocket to /v1/ws from a chosen source address."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws

    async def send(self, message: msgspec.Struct) -> None:
        await self.ws.send_str(encode(message).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self) -> ServerMessage:
        msg = await self.ws.receive(timeout=RECV_TIMEOUT)
        assert msg.type is aiohttp.WSMsgType.TEXT, (
            f"expected a text frame, got {msg.type} {msg.data!r}"
        )
        return decode_server(msg.data)

    async def expect(self, kind: type[T]) -> T:
        message = await self.recv()
        assert isinstance(message, kind), f"expected {kind.__name__}, got {message!r}"
        return message

    async def expect_error(self, code: ErrorCode) -> Error:
        error = await self.expect(Error)
        assert error.code is code, error
        assert error.message  # a sentence for people
        return error

    async def expect_close(self) -> int | None:
        msg = await self.ws.receive(timeout=RECV_TIMEOUT)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), (msg.type, msg.data)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


Connect = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    servers: list[RunningServer] = []

    async def _start(clock: Callable[[], float] = time.time, **overrides: Any) -> RunningServer:
        config = ServerConfig(host="127.0.0.1", port=0, **overrides)
        server = await start_server(config, clock=clock)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        await server.close()


@pytest.fixture
async def server(start: Callable[..., Awaitable[RunningServer]]) -> RunningServer:
    return await start()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    clients: list[Client] = []

    async def _connect(
        server: RunningServer, source: str = "127.0.0.1", autoping: bool = True
    ) -> Client:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
        try:
            ws = await session.ws_connect(f"{server.url}/v1/ws", autoping=autoping)
        except BaseException:
            await session.close()
            raise
        client = Client(session, ws)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        await client.close()


async def pair(
    server: RunningServer, connect: Connect, source: str = "127.0.0.1"
) -> tuple[Client, Client]:
    """An agent and a phone joined through a fresh token; both checked."""
    agent = await connect(server, source)
    await agent.send(PairCreate(name="Office PC"))
    created = await agent.expect(PairCreated)
    phone = await connect(server, source)
    await phone.send(PairJoin(token=created.token, name="Anna's phone"))
    assert (await agent.expect(PeerJoined)).name == "Anna's phone"
    assert (await phone.expect(PairJoined)).peer_name == "Office PC"
    return agent, phone


async def assert_still_serves(server: RunningServer, connect: Connect) -> None:
    agent, phone = await pair(server, connect)
    await phone.send(Relay(data=b"still alive"))
    assert (await agent.expect(Relay)).data == b"still alive"


async def until(condition: Callable[[], bool], timeout: float = RECV_TIMEOUT) -> None:
    """Wait for server-side state that has no client-visible event (bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# ---- plain HTTP ------------------------------------------------------------------------------


async def test_healthz_and_phone_page(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": True}
        # The phone web app (test_phone_serving.py has the details).
        async with session.get(f"{server.url}/p") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert '<script type="module" src="/app/main.js">' in await resp.text()


async def test_port_zero_reports_bound_port_and_close_is_idempotent(
    start: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start()
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    await server.close()
    await server.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_shutdown_closes_open_websockets(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start()
    agent, phone = await pair(server, connect)
    await server.close()
    assert await agent.expect_close() == aiohttp.WSCloseCode.GOING_AWAY


# ---- the protocol ----------------------------------------------------------------------------


async def test_pairing_relay_and_leave(server: RunningServer, connect: Connect) -> None:
    agent, phone = await pair(server, connect)
    await phone.send(Relay(data=b"\x01noise-handshake"))
    assert (await agent.expect(Relay)).data == b"\x01noise-handshake"
    await agent.send(Relay(data=b"\x02answer"))
    assert (await phone.expect(Relay)).data == b"\x02answer"
    await phone.close()
    await agent.expect(PeerLeft)
    await agent.send(Relay(data=b"anyone?"))
    await agent.expect_error(ErrorCode.PEER_GONE)


async def test_agent_leaving_ends_the_pairing(server: RunningServer, connect: Connect) -> None:
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    token = (await agent.expect(PairCreated)).token
    await agent.close()
    await until(lambda: server.app[SIGNALING].rooms.room_count == 0)
    phone = await connect(server)
    await phone.send(PairJoin(token=token, name="Phone"))
    await phone.expect_error(ErrorCode.PEER_GONE)


async def test_agent_leaving_orphans_joiner(server: RunningServer, connect: Connect) -> None:
    agent, phone = await pair(server, connect)
    await agent.close()
    await phone.expect(PeerLeft)
    await phone.send(Relay(data=b"x"))
    await phone.expect_error(ErrorCode.PEER_GONE)


async def test_second_bind_on_a_socket_is_already_bound(
    server: RunningServer, connect: Connect
) -> None:
    agent, phone = await pair(server, connect)
    await agent.send(PairCreate(name="again"))
    await agent.expect_error(ErrorCode.ALREADY_BOUND)
    await phone.send(Rendezvous(rid="abc"))
    await phone.expect_error(ErrorCode.ALREADY_BOUND)
    await phone.send(Relay(data=b"ok"))  # still bound to its room
    assert (await agent.expect(Relay)).data == b"ok"


async def test_refresh_and_relay_need_a_room(server: RunningServer, connect: Connect) -> None:
    stranger = await connect(server)
    await stranger.send(PairRefresh())
    await stranger.expect_error(ErrorCode.NOT_IN_ROOM)
    await stranger.send(Relay(data=b"x"))
    await stranger.expect_error(ErrorCode.NOT_IN_ROOM)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    await agent.expect(PairCreated)
    await agent.send(Relay(data=b"x"))
    await agent.expect_error(ErrorCode.PEER_GONE)


async def test_relay_routed_only_between_room_members(
    server: RunningServer, connect: Connect
) -> None:
    agent1, phone1 = await pair(server, connect)
    agent2, phone2 = await pair(server, connect)
    await phone1.send(Relay(data=b"for agent 1"))
    await phone2.send(Relay(data=b"for agent 2"))
    await agent2.send(Relay(data=b"for phone 2"))
    # Each socket's next message is its own room's: nothing crossed over.
    assert (await agent1.expect(Relay)).data == b"for agent 1"
    assert (await agent2.expect(Relay)).data == b"for agent 2"
    assert (await phone2.expect(Relay)).data == b"for phone 2"
    await agent1.send(Relay(data=b"for phone 1"))
    assert (await phone1.expect(Relay)).data == b"for phone 1"


async def test_relay_rate_limited_per_socket(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(relay_per_second=3.0)
    agent, phone = await pair(server, connect)
    for i in range(3):
        await phone.send(Relay(data=bytes([i])))
    await phone.send(Relay(data=b"one too many"))
    await phone.expect_error(ErrorCode.RATE_LIMITED)
    assert [(await agent.expect(Relay)).data for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
    # The limit is per socket: the agent's own budget is untouched.
    await agent.send(Relay(data=b"reply"))
    assert (await phone.expect(Relay)).data == b"reply"


async def test_rendezvous_matching(server: RunningServer, connect: Connect) -> None:
    pc = await connect(server)
    await pc.send(Rendezvous(rid="cmlkLW9mLXRoZS1kYXk"))
    await pc.expect(RendezvousWaiting)
    other = await connect(server)
    await other.send(Rendezvous(rid="another-rid"))
    await other.expect(RendezvousWaiting)
    phone = await connect(server)
    await phone.send(Rendezvous(rid="cmlkLW9mLXRoZS1kYXk"))
    await pc.expect(RendezvousMatched)
    await phone.expect(RendezvousMatched)
    await phone.send(Relay(data=b"kk handshake"))
    assert (await pc.expect(Relay)).data == b"kk handshake"
    third = await connect(server)
    await third.send(Rendezvous(rid="cmlkLW9mLXRoZS1kYXk"))
    await third.expect_error(ErrorCode.ROOM_FULL)
    await phone.close()
    await pc.expect(PeerLeft)
    # The phone comes back on a new socket: matched again with the waiting PC.
    again = await connect(server)
    await again.send(Rendezvous(rid="cmlkLW9mLXRoZS1kYXk"))
    await again.expect(RendezvousMatched)
    await pc.expect(RendezvousMatched)
    await assert_still_serves(server, connect)


async def test_turn_credentials_in_every_validated_answer(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(
        turn_secret="coturn-static-auth-secret",
        turn_urls=("turn:198.51.100.10:3478?transport=udp",),
        stun_urls=("stun:198.51.100.10:3478",),
        turn_ttl=600.0,
    )
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    created = await agent.expect(PairCreated)
    phone = await connect(server)
    await phone.send(PairJoin(token=created.token, name="Phone"))
    await agent.expect(PeerJoined)
    joined = await phone.expect(PairJoined)
    a = await connect(server)
    b = await connect(server)
    await a.send(Rendezvous(rid="rid"))
    await a.expect(RendezvousWaiting)
    await b.send(Rendezvous(rid="rid"))
    matched = await b.expect(RendezvousMatched)
    now = time.time()
    for servers in (created.ice_servers, joined.ice_servers, matched.ice_servers):
        stun, turn = servers
        assert stun.urls == ["stun:198.51.100.10:3478"] and stun.username is None
        assert turn.urls == ["turn:198.51.100.10:3478?transport=udp"]
        assert turn.username is not None and turn.credential is not None
        expiry = int(turn.username.split(":", 1)[0])
        assert now + 590 < expiry <= now + 602
        assert verify_turn_password(
            "coturn-static-auth-secret", turn.username, turn.credential, now
        )
        assert not verify_turn_password("wrong", turn.username, turn.credential, now)


# ---- hostile input: each its own test --------------------------------------------------------


async def test_malformed_json(server: RunningServer, connect: Connect) -> None:
    client = await connect(server)
    await client.send_raw('{"t": "pair.create", "name": ')
    await client.expect_error(ErrorCode.BAD_JSON)
    await client.send(PairCreate(name="PC"))  # the same socket is still served
    await client.expect(PairCreated)
    await assert_still_serves(server, connect)


async def test_unknown_message_type(server: RunningServer, connect: Connect) -> None:
    client = await connect(server)
    await client.send_raw('{"t": "room.list", "v": 1}')
    await client.expect_error(ErrorCode.BAD_MESSAGE)
    await assert_still_serves(server, connect)


async def test_extra_fields(server: RunningServer, connect: Connect) -> None:
    client = await connect(server)
    await client.send_raw('{"t": "pair.create", "v": 1, "name": "PC", "admin": true}')
    await client.expect_error(ErrorCode.BAD_MESSAGE)
    await assert_still_serves(server, connect)


async def test_binary_frame(server: RunningServer, connect: Connect) -> None:
    client = await connect(server)
    await client.ws.send_bytes(encode(PairCreate(name="PC")))
    await client.expect_error(ErrorCode.BAD_MESSAGE)
    await assert_still_serves(server, connect)


async def test_five_protocol_errors_close_the_socket(
    server: RunningServer, connect: Connect
) -> None:
    client = await connect(server)
    for _ in range(5):
        await client.send_raw("nonsense")
        await client.expect_error(ErrorCode.BAD_JSON)
    assert await client.expect_close() == aiohttp.WSCloseCode.POLICY_VIOLATION
    await assert_still_serves(server, connect)


async def test_frame_over_64_kib_closed_with_1009(server: RunningServer, connect: Connect) -> None:
    at_limit = await connect(server)
    await at_limit.send_raw(" " * (64 * 1024))  # exactly the cap: parsed, and merely not JSON
    await at_limit.expect_error(ErrorCode.BAD_JSON)
    client = await connect(server)
    await client.send_raw(" " * (64 * 1024 + 1))
    assert await client.expect_close() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG == 1009
    await assert_still_serves(server, connect)


async def test_forged_token(server: RunningServer, connect: Connect) -> None:
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    token = (await agent.expect(PairCreated)).token
    raw = bytearray(b64u_decode(token, max_len=256))
    raw[20] ^= 0x01  # one bit inside the sealed room id
    phone = await connect(server)
    await phone.send(PairJoin(token=b64u_encode(bytes(raw)), name="Mallory"))
    await phone.expect_error(ErrorCode.BAD_TOKEN)
    await phone.send(PairJoin(token="not-even-base64!", name="Mallory"))
    await phone.expect_error(ErrorCode.BAD_TOKEN)
    # The genuine token still works: a forgery burns nothing.
    await phone.send(PairJoin(token=token, name="Anna"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)
    await assert_still_serves(server, connect)


async def test_expired_token(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    clock = Clock()
    server = await start(clock=clock, token_ttl=120.0)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    created = await agent.expect(PairCreated)
    assert created.expires_at == pytest.approx(clock.now + 120.0, abs=0.01)
    clock.now = created.expires_at  # valid strictly before expires_at
    phone = await connect(server)
    await phone.send(PairJoin(token=created.token, name="Phone"))
    await phone.expect_error(ErrorCode.TOKEN_EXPIRED)
    # The agent refreshes (as it does before expiry) and the new code works.
    await agent.send(PairRefresh())
    fresh = await agent.expect(PairCreated)
    await phone.send(PairJoin(token=fresh.token, name="Phone"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)
    await assert_still_serves(server, connect)


async def test_replayed_token(server: RunningServer, connect: Connect) -> None:
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    token = (await agent.expect(PairCreated)).token
    phone = await connect(server)
    await phone.send(PairJoin(token=token, name="Phone"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)
    replay = await connect(server, OTHER_IP)
    await replay.send(PairJoin(token=token, name="Replay"))
    await replay.expect_error(ErrorCode.TOKEN_USED)
    refused = await agent.expect(JoinRefused)
    assert refused.code is ErrorCode.TOKEN_USED and refused.message
    # Still used after the first joiner left and the room has room again.
    await phone.close()
    await agent.expect(PeerLeft)
    await replay.send(PairJoin(token=token, name="Replay"))
    await replay.expect_error(ErrorCode.TOKEN_USED)
    assert (await agent.expect(JoinRefused)).code is ErrorCode.TOKEN_USED
    await assert_still_serves(server, connect)


async def test_third_device_in_full_room(server: RunningServer, connect: Connect) -> None:
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    token1 = (await agent.expect(PairCreated)).token
    await agent.send(PairRefresh())  # a second valid code for the same room, before any join
    token2 = (await agent.expect(PairCreated)).token
    assert token2 != token1
    phone = await connect(server)
    await phone.send(PairJoin(token=token1, name="Phone"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)
    third = await connect(server)
    await third.send(PairJoin(token=token2, name="Third"))
    await third.expect_error(ErrorCode.ROOM_FULL)
    refused = await agent.expect(JoinRefused)
    assert refused.code is ErrorCode.ROOM_FULL
    await agent.send(PairRefresh())  # no new codes for a full room
    await agent.expect_error(ErrorCode.ROOM_FULL)
    await third.send(Relay(data=b"let me in"))
    await third.expect_error(ErrorCode.NOT_IN_ROOM)
    await assert_still_serves(server, connect)


async def test_token_request_flood_limited_per_ip(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(token_requests_per_minute=3.0)
    flooder = await connect(server, OTHER_IP)
    await flooder.send(PairCreate(name="Flood"))
    await flooder.expect(PairCreated)
    for _ in range(2):
        await flooder.send(PairRefresh())
        await flooder.expect(PairCreated)
    await flooder.send(PairRefresh())
    await flooder.expect_error(ErrorCode.RATE_LIMITED)
    # A new socket from the same address is limited too (the limit is the address's).
    again = await connect(server, OTHER_IP)
    await again.send(PairCreate(name="Flood"))
    await again.expect_error(ErrorCode.RATE_LIMITED)
    # Another address still pairs.
    await assert_still_serves(server, connect)


async def test_join_flood_limited_per_ip(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(joins_per_minute=2.0)
    guesser = await connect(server, OTHER_IP)
    forged = b64u_encode(bytes(87))
    for _ in range(2):
        await guesser.send(PairJoin(token=forged, name="Guess"))
        await guesser.expect_error(ErrorCode.BAD_TOKEN)
    await guesser.send(PairJoin(token=forged, name="Guess"))
    await guesser.expect_error(ErrorCode.RATE_LIMITED)
    await guesser.send(Rendezvous(rid="guess"))  # rendezvous shares the join budget
    await guesser.expect_error(ErrorCode.RATE_LIMITED)
    await assert_still_serves(server, connect)


async def test_concurrent_sockets_capped_per_ip(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(max_sockets_per_ip=2)
    first = await connect(server, OTHER_IP)
    await connect(server, OTHER_IP)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(server, OTHER_IP)
    assert refused.value.status == 429
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(OTHER_IP, 0))
    ) as session:
        async with session.get(f"{server.url}/v1/ws") as resp:
            assert resp.status == 429
            body = decode_server(await resp.read())
            assert isinstance(body, Error) and body.code is ErrorCode.RATE_LIMITED
    await assert_still_serves(server, connect)  # from 127.0.0.1
    await first.close()
    state = server.app[SIGNALING]
    await until(lambda: state.connection_count == 3)  # the other IP's second socket + the pair
    await connect(server, OTHER_IP)  # a slot is free again


async def test_connection_rate_limited_per_ip(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(connections_per_minute=3.0)
    for _ in range(3):
        client = await connect(server, OTHER_IP)
        await client.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(server, OTHER_IP)
    assert refused.value.status == 429
    await assert_still_serves(server, connect)


async def test_idle_unauthenticated_socket_closed_by_deadline(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(auth_deadline=0.3)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))  # authenticates before the deadline
    await agent.expect(PairCreated)
    idle = await connect(server)
    started = time.monotonic()
    await idle.expect_error(ErrorCode.AUTH_TIMEOUT)
    assert await idle.expect_close() == aiohttp.WSCloseCode.POLICY_VIOLATION
    assert 0.25 <= time.monotonic() - started < 2.0
    # A socket that keeps sending junk does not buy time either.
    chatty = await connect(server)
    started = time.monotonic()
    await chatty.send_raw('{"t": "relay", "v": 1, "data": ""}')
    await chatty.expect_error(ErrorCode.NOT_IN_ROOM)
    await chatty.expect_error(ErrorCode.AUTH_TIMEOUT)
    assert time.monotonic() - started < 2.0
    # The authenticated agent outlived both deadlines and is still served.
    await agent.send(PairRefresh())
    await agent.expect(PairCreated)
    await assert_still_serves(server, connect)


async def test_slow_headers_closed_within_header_deadline(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    # keepalive (aiohttp's own idle close) is far longer: only the header guard can close it.
    server = await start(header_deadline=0.3, keepalive=8.0)
    agent, phone = await pair(server, connect)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        for i in range(30):  # well under max_headers: only the deadline may end it
            writer.write(f"X-Slow-{i}: 1\r\n".encode())
            await asyncio.sleep(0.2)

    started = time.monotonic()
    sender = asyncio.create_task(trickle())
    try:
        assert await asyncio.wait_for(reader.read(), timeout=5.0) == b""  # closed, no answer
    finally:
        sender.cancel()
        writer.close()
    assert time.monotonic() - started < 2.0
    # A complete request on a raw connection is answered normally.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5.0)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"ok": true}')
    # WebSockets opened before are long past the header deadline and still relay.
    await phone.send(Relay(data=b"after"))
    assert (await agent.expect(Relay)).data == b"after"


async def test_idle_keepalive_connection_closed(
    start: Callable[..., Awaitable[RunningServer]],
) -> None:
    server = await start(keepalive=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b'{"ok": true}'), timeout=5.0)
    assert head.startswith(b"HTTP/1.1 200")
    # aiohttp's default would hold the idle connection for an hour.
    assert await asyncio.wait_for(reader.read(), timeout=5.0) == b""
    writer.close()
    assert time.monotonic() - started < 2.0


async def test_heartbeat_drops_a_silent_peer(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(heartbeat=0.2)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    created = await agent.expect(PairCreated)
    silent = await connect(server, autoping=False)  # reads pings but never answers them
    await silent.send(PairJoin(token=created.token, name="Vanished phone"))
    await agent.expect(PeerJoined)
    await silent.expect(PairJoined)
    started = time.monotonic()
    await agent.expect(PeerLeft)  # meanwhile the agent answers pings (autoping) and stays
    assert time.monotonic() - started < 2.0
    await agent.send(PairRefresh())  # its room is open again
    await agent.expect(PairCreated)


# ---- logs ------------------------------------------------------------------------------------


async def test_logs_never_contain_tokens_or_payloads(
    server: RunningServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = b"PAYLOAD-\xffsecret-bytes"
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    created = await agent.expect(PairCreated)
    phone = await connect(server)
    await phone.send(PairJoin(token=created.token, name="Phone"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)
    await phone.send(Relay(data=payload))
    await agent.expect(Relay)
    replay = await connect(server)
    await replay.send(PairJoin(token=created.token, name="Replay"))
    await replay.expect_error(ErrorCode.TOKEN_USED)
    await agent.expect(JoinRefused)
    rid = "ZGF5LXJpZC1zZWNyZXQ"
    for expected in (RendezvousWaiting, RendezvousMatched):
        device = await connect(server)
        await device.send(Rendezvous(rid=rid))
        await device.expect(expected)
    await phone.close()
    await agent.expect(PeerLeft)
    text = caplog.text
    assert "conn " in text  # the server did log this flow, by connection id
    encoded_payload = encode(Relay(data=payload)).decode()
    for secret in (
        created.token,
        created.token[:16],
        "PAYLOAD",
        encoded_payload.split('"data":')[1][1:20],
        rid,
    ):
        assert secret not in text
