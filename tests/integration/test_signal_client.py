"""The device's signaling client against the real server on loopback (no WebRTC here)."""

from __future__ import annotations

import pytest

from peer_agent.errors import ServerRefused, ServerUnreachable
from peer_agent.signal_client import SignalClient
from signaling.config import ServerConfig
from signaling.schema import ErrorCode, PairCreate, PairCreated
from signaling.server import start_server


async def test_too_many_sockets_is_reported_as_rate_limited_not_unreachable():
    server = await start_server(ServerConfig(host="127.0.0.1", port=0, max_sockets_per_ip=1))
    try:
        first = await SignalClient.connect(server.url)
        await first.send(PairCreate(name="PC"))
        await first.expect_one(PairCreated, timeout=5)
        with pytest.raises(ServerRefused) as info:
            await SignalClient.connect(server.url)
        assert info.value.code == ErrorCode.RATE_LIMITED
        assert "too many" in info.value.message
        await first.close()
    finally:
        await server.close()


async def test_nothing_listening_is_unreachable_with_a_sentence():
    server = await start_server(ServerConfig(host="127.0.0.1", port=0))
    url = server.url
    await server.close()
    with pytest.raises(ServerUnreachable) as info:
        await SignalClient.connect(url, timeout=3)
    assert info.value.code == ErrorCode.SERVER_UNREACHABLE and "Check the address" in info.value.message


def test_origin_must_be_http_or_https():
    from peer_agent.signal_client import ws_url

    assert ws_url("https://beam.example") == "wss://beam.example/v1/ws"
    assert ws_url("http://198.51.100.1:8443/") == "ws://198.51.100.1:8443/v1/ws"
    with pytest.raises(ServerUnreachable):
        ws_url("ftp://x")
