"""The signaling server serves the phone web app and answers pair.peek: the real server on
127.0.0.1 (port 0), real aiohttp clients. No namespaces needed: nothing here is WebRTC."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from signaling.config import ServerConfig
from signaling.schema import (
    ErrorCode,
    JoinRefused,
    PairCreate,
    PairCreated,
    PairInfo,
    PairJoin,
    PairJoined,
    PairPeek,
    PeerJoined,
)
from signaling.server import RunningServer, start_server
from signaling.webapp import DEFAULT_APP_DIR, add_routes, content_security_policy
from tests.integration.test_signaling_server import (  # noqa: F401 (fixtures)
    OTHER_IP,
    Clock,
    Connect,
    connect,
    server,
    start,
)


# ---- pair.peek --------------------------------------------------------------------------------


async def test_peek_names_the_pc_and_burns_nothing(server: RunningServer, connect: Connect) -> None:
    agent = await connect(server)
    await agent.send(PairCreate(name="Desk PC"))
    created = await agent.expect(PairCreated)
    phone = await connect(server, OTHER_IP)
    for _ in range(3):
        await phone.send(PairPeek(token=created.token))
        info = await phone.expect(PairInfo)
        assert info.name == "Desk PC" and info.expires_at == pytest.approx(created.expires_at, abs=0.01)
    # The same socket then joins with the same token: the looks consumed nothing, and the
    # agent's first message is the join, not anything about the looks.
    await phone.send(PairJoin(token=created.token, name="Phone"))
    assert (await agent.expect(PeerJoined)).name == "Phone"
    assert (await phone.expect(PairJoined)).peer_name == "Desk PC"


async def test_peek_says_used_expired_bad_without_telling_the_agent(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    clock = Clock()
    server = await start(clock=clock)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    created = await agent.expect(PairCreated)
    phone = await connect(server)
    await phone.send(PairJoin(token=created.token, name="Phone"))
    await agent.expect(PeerJoined)
    await phone.expect(PairJoined)

    looker = await connect(server, OTHER_IP)
    await looker.send(PairPeek(token=created.token))
    await looker.expect_error(ErrorCode.TOKEN_USED)
    await looker.send(PairPeek(token=created.token[:-4] + "AAAA"))
    await looker.expect_error(ErrorCode.BAD_TOKEN)
    # A peek is not an attempt to join: the agent hears nothing of it. A replayed *join* is
    # still reported to the agent, and it is the first thing the agent hears after the peeks.
    await looker.send(PairJoin(token=created.token, name="Replay"))
    await looker.expect_error(ErrorCode.TOKEN_USED)
    assert (await agent.expect(JoinRefused)).code is ErrorCode.TOKEN_USED

    other = await connect(server)
    await other.send(PairCreate(name="PC 2"))
    fresh = await other.expect(PairCreated)
    clock.now = fresh.expires_at
    await looker.send(PairPeek(token=fresh.token))
    await looker.expect_error(ErrorCode.TOKEN_EXPIRED)


async def test_peek_shares_the_join_budget(
    start: Callable[..., Awaitable[RunningServer]], connect: Connect
) -> None:
    server = await start(joins_per_minute=2.0)
    agent = await connect(server)
    await agent.send(PairCreate(name="PC"))
    token = (await agent.expect(PairCreated)).token
    guesser = await connect(server, OTHER_IP)
    for _ in range(2):
        await guesser.send(PairPeek(token=token))
        await guesser.expect(PairInfo)
    await guesser.send(PairPeek(token=token))
    await guesser.expect_error(ErrorCode.RATE_LIMITED)
    await guesser.send(PairJoin(token=token, name="G"))
    await guesser.expect_error(ErrorCode.RATE_LIMITED)


# ---- serving the app --------------------------------------------------------------------------


def assert_hardened(resp: aiohttp.ClientResponse, host: str) -> None:
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert directives["img-src"] == "'self' blob: data:"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_p_serves_the_app_page_with_strict_headers(server: RunningServer) -> None:
    host = f"127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/p") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert_hardened(resp, host)
            assert resp.headers["Cache-Control"] == "no-cache"
            page = await resp.text()
        assert page == (DEFAULT_APP_DIR / "index.html").read_text(encoding="utf-8")
        # No inline script (the CSP would refuse it anyway): every script is a file of ours.
        assert "<script>" not in page and 'src="/app/boot.js"' in page and 'src="/app/main.js"' in page
        for path, kind in (("/app/main.js", "text/javascript"), ("/app/core/noise.js", "text/javascript"),
                           ("/app/vendor/noble.js", "text/javascript"), ("/app/style.css", "text/css"),
                           ("/app/icon.svg", "image/svg+xml")):
            async with session.get(f"{server.url}{path}") as resp:
                assert resp.status == 200 and resp.content_type == kind, path
                assert_hardened(resp, host)
                body = await resp.read()
                etag = resp.headers["ETag"]
            assert etag == '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            # Revalidation: unchanged files cost a 304 and no body.
            async with session.get(f"{server.url}{path}", headers={"If-None-Match": etag}) as resp:
                assert resp.status == 304 and await resp.read() == b""


@pytest.mark.parametrize("path", [
    "/app/../signaling/server.py", "/app/%2e%2e/pyproject.toml", "/app/core/../../../README.md",
    "/app/.hidden.js", "/app/core/", "/app/nope.js", "/app/index.py", "/app/vendor",
])
async def test_nothing_outside_the_app_or_of_another_kind(server: RunningServer, path: str) -> None:
    # Sent as written (encoded=True): no client-side clean-up of the dot segments.
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(f"{server.url}{path}", encoded=True)) as resp:
            assert resp.status == 404, path
            body = await resp.read()
    assert b"import" not in body and b"[project]" not in body and len(body) < 100


async def test_a_forged_host_header_cannot_widen_the_policy(server: RunningServer) -> None:
    assert "evil" not in content_security_policy("x; connect-src https://evil.example")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/p", headers={"Host": "x; script-src *"}) as resp:
            assert resp.status == 200
            csp = resp.headers["Content-Security-Policy"]
            assert "connect-src 'self';" in csp and "script-src 'self';" in csp and "*" not in csp


async def test_unbuilt_app_says_how_to_build_it(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>", encoding="utf-8")  # no vendor/noble.js
    app = web.Application()
    add_routes(app, tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/p") as resp:
            assert resp.status == 503
            assert "scripts/webapp" in await resp.text()
    finally:
        await runner.cleanup()


async def test_a_link_out_of_the_app_dir_is_not_followed(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    (app_dir / "vendor").mkdir(parents=True)
    (app_dir / "vendor" / "noble.js").write_text("export {};", encoding="utf-8")
    (tmp_path / "secret.js").write_text("the secret", encoding="utf-8")
    (app_dir / "leak.js").symlink_to(tmp_path / "secret.js")
    app = web.Application()
    add_routes(app, app_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/app/leak.js") as resp:
                assert resp.status == 404 and "secret" not in await resp.text()
            async with session.get(f"http://127.0.0.1:{port}/app/vendor/noble.js") as resp:
                assert resp.status == 200 and await resp.text() == "export {};"
    finally:
        await runner.cleanup()


async def test_agent_embedded_server_serves_the_same_app(
    start: Callable[..., Awaitable[RunningServer]],
) -> None:
    # `peerbeam agent` without --server runs signaling.server.start_server itself (cli.py): the
    # same build_app, so the same routes. Prove the route table has them.
    server = await start()
    routes = {r.resource.canonical for r in server.app.router.routes() if r.resource is not None}
    assert {"/p", "/app/{path}"} <= routes
