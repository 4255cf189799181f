"""Successive connection attempts offer aiortc TURN over UDP, then TCP, then TLS — checked with
aiortc's own reading of the list (it uses only the first usable TURN URL)."""

from aiortc.rtcicetransport import connection_kwargs

from peer_agent.ice_order import attempts, for_attempt, transports
from peer_agent.rtc import to_rtc_ice_servers
from signaling.schema import IceServer

STUN = IceServer(urls=["stun:203.0.113.1:3478"])
TURN = IceServer(urls=["turn:203.0.113.1:3478?transport=udp", "turn:203.0.113.1:3478?transport=tcp",
                       "turns:203.0.113.1:5349?transport=tcp"], username="1:u", credential="p")


def chosen(servers: list[IceServer]) -> tuple[str, bool, tuple[str, int]]:
    kwargs = connection_kwargs(to_rtc_ice_servers(servers))
    return kwargs["turn_transport"], kwargs["turn_ssl"], kwargs["stun_server"]


def test_attempts_cycle_udp_tcp_tls_as_aiortc_reads_them():
    stun = ("203.0.113.1", 3478)
    assert chosen(for_attempt([STUN, TURN], 0)) == ("udp", False, stun)
    assert chosen(for_attempt([STUN, TURN], 1)) == ("tcp", False, stun)
    assert chosen(for_attempt([STUN, TURN], 2)) == ("tcp", True, stun)
    assert chosen(for_attempt([STUN, TURN], 3)) == ("udp", False, stun)


def test_credentials_and_stun_survive_and_nothing_is_lost():
    for attempt in range(3):
        (stun, turn) = for_attempt([STUN, TURN], attempt)
        assert stun == STUN
        assert (turn.username, turn.credential) == ("1:u", "p")
        assert sorted(turn.urls) == sorted(TURN.urls)


def test_lists_with_one_transport_or_none_are_left_alone():
    udp_only = IceServer(urls=["turn:203.0.113.1:3478"], username="1:u", credential="p")
    assert for_attempt([STUN, udp_only], 1) == [STUN, udp_only]
    assert for_attempt([STUN], 2) == [STUN]
    assert for_attempt([], 1) == []
    assert transports([STUN, TURN]) == ["udp", "tcp", "tls"]


def test_two_transports_alternate():
    tls_and_udp = IceServer(urls=["turns:203.0.113.1:5349?transport=tcp", "turn:203.0.113.1:3478"],
                            username="1:u", credential="p")
    assert chosen(for_attempt([STUN, tls_and_udp], 0))[:2] == ("udp", False)
    assert chosen(for_attempt([STUN, tls_and_udp], 1))[:2] == ("tcp", True)
    assert chosen(for_attempt([STUN, tls_and_udp], 2))[:2] == ("udp", False)


def test_one_establish_tries_each_offered_transport_once_from_the_given_start():
    plans = attempts([STUN, TURN], first=1)
    assert [p.transport for p in plans] == ["tcp", "tls", "udp"]
    assert [chosen(p.servers)[:2] for p in plans] == [("tcp", False), ("tcp", True), ("udp", False)]
    # No TURN at all, or one transport: a single attempt (the same again would only be slower).
    assert attempts([STUN]) == [type(plans[0])(None, [STUN])]
    udp_only = IceServer(urls=["turn:203.0.113.1:3478"], username="1:u", credential="p")
    assert [p.transport for p in attempts([udp_only], first=5)] == ["udp"]
