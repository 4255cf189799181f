"""The room state machine in memory: no sockets, no clock, every outcome checked."""

from __future__ import annotations

import itertools

import pytest

from signaling.errors import SignalingError
from signaling.rooms import Role, Rooms, Send
from signaling.schema import (
    Error,
    ErrorCode,
    IceServer,
    JoinRefused,
    PairCreate,
    PairJoin,
    PairJoined,
    PairRefresh,
    PeerJoined,
    PeerLeft,
    Relay,
    Rendezvous,
    RendezvousMatched,
    RendezvousWaiting,
)

AGENT, PHONE, THIRD, FOURTH = 1, 2, 3, 4
ICE = [IceServer(urls=["stun:198.51.100.1:3478"])]


def _ids() -> itertools.count[int]:
    return itertools.count(1)


@pytest.fixture
def rooms() -> Rooms:
    counter = _ids()
    return Rooms(new_room_id=lambda: next(counter).to_bytes(16, "big"))


class Minted:
    """Counts how often ICE servers (TURN credentials) were minted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> list[IceServer]:
        self.calls += 1
        return list(ICE)


def codes(sends: list[Send]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for s in sends:
        m = s.message
        out.append(
            (s.to, m.code.value if isinstance(m, (Error, JoinRefused)) else type(m).__name__)
        )
    return out


def paired(rooms: Rooms) -> bytes:
    room = rooms.create_pairing(AGENT, "PC")
    rooms.join_pairing(room, PHONE, "Phone", first_use=True, ice_servers=Minted())
    return room


def test_pairing_flow_notifies_agent_first_then_joiner(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "PC")
    assert len(room) == 16 and rooms.role(AGENT) is Role.AGENT
    minted = Minted()
    sends = rooms.join_pairing(room, PHONE, "Phone", first_use=True, ice_servers=minted)
    assert sends == [
        Send(AGENT, PeerJoined(name="Phone")),
        Send(PHONE, PairJoined(peer_name="PC", ice_servers=ICE)),
    ]
    assert minted.calls == 1
    assert rooms.role(PHONE) is Role.JOINER


def test_reused_token_refused_and_agent_told(rooms: Rooms) -> None:
    room = paired(rooms)
    minted = Minted()
    sends = rooms.join_pairing(room, THIRD, "Thief", first_use=False, ice_servers=minted)
    assert codes(sends) == [(THIRD, "token_used"), (AGENT, "token_used")]
    assert minted.calls == 0  # no TURN credentials for a refused device
    assert rooms.role(THIRD) is Role.NONE


def test_reused_token_after_agent_left_only_tells_joiner(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "PC")
    rooms.leave(AGENT)
    assert codes(rooms.join_pairing(room, PHONE, "P", first_use=False, ice_servers=Minted())) == [
        (PHONE, "token_used")
    ]


def test_full_room_refuses_third_and_tells_agent(rooms: Rooms) -> None:
    room = paired(rooms)
    sends = rooms.join_pairing(room, THIRD, "Third", first_use=True, ice_servers=Minted())
    assert codes(sends) == [(THIRD, "room_full"), (AGENT, "room_full")]
    assert codes(rooms.relay(THIRD, b"x")) == [(THIRD, "not_in_room")]
    assert rooms.relay(PHONE, b"still") == [Send(AGENT, Relay(data=b"still"))]


def test_join_gone_room_is_peer_gone(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "PC")
    rooms.leave(AGENT)
    assert rooms.room_count == 0
    assert codes(rooms.join_pairing(room, PHONE, "P", first_use=True, ice_servers=Minted())) == [
        (PHONE, "peer_gone")
    ]


def test_refresh_only_for_agent_of_room_not_full(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "PC")
    assert rooms.refresh(AGENT) == room
    with pytest.raises(SignalingError) as not_member:
        rooms.refresh(THIRD)
    assert not_member.value.code is ErrorCode.NOT_IN_ROOM
    rooms.join_pairing(room, PHONE, "P", first_use=True, ice_servers=Minted())
    with pytest.raises(SignalingError) as joiner:
        rooms.refresh(PHONE)
    assert joiner.value.code is ErrorCode.NOT_IN_ROOM
    with pytest.raises(SignalingError) as full:
        rooms.refresh(AGENT)
    assert full.value.code is ErrorCode.ROOM_FULL


def test_second_bind_on_a_socket_is_already_bound(rooms: Rooms) -> None:
    room = paired(rooms)
    for conn in (AGENT, PHONE):
        for kind in (PairCreate, PairJoin, Rendezvous):
            assert rooms.refusal(conn, kind) is ErrorCode.ALREADY_BOUND
        with pytest.raises(SignalingError) as exc:
            rooms.create_pairing(conn, "again")
        assert exc.value.code is ErrorCode.ALREADY_BOUND
    assert codes(rooms.join_pairing(room, AGENT, "self", first_use=True, ice_servers=Minted())) == [
        (AGENT, "already_bound")
    ]
    assert codes(rooms.rendezvous("rid", PHONE, Minted())) == [(PHONE, "already_bound")]


def test_relay_routes_only_between_members(rooms: Rooms) -> None:
    paired(rooms)
    assert rooms.relay(PHONE, b"\x00secret") == [Send(AGENT, Relay(data=b"\x00secret"))]
    assert rooms.relay(AGENT, b"back") == [Send(PHONE, Relay(data=b"back"))]
    assert codes(rooms.relay(THIRD, b"x")) == [(THIRD, "not_in_room")]
    assert rooms.refusal(THIRD, Relay) is ErrorCode.NOT_IN_ROOM


def test_relay_alone_in_room_is_peer_gone(rooms: Rooms) -> None:
    rooms.create_pairing(AGENT, "PC")
    assert codes(rooms.relay(AGENT, b"x")) == [(AGENT, "peer_gone")]


def test_joiner_leaving_tells_agent_and_reopens_room(rooms: Rooms) -> None:
    room = paired(rooms)
    assert rooms.leave(PHONE) == [Send(AGENT, PeerLeft())]
    assert rooms.refresh(AGENT) == room  # not full any more: a new code may be shown
    assert codes(rooms.join_pairing(room, THIRD, "T", first_use=True, ice_servers=Minted())) == [
        (AGENT, "PeerJoined"),
        (THIRD, "PairJoined"),
    ]


def test_agent_leaving_removes_room_and_orphans_joiner(rooms: Rooms) -> None:
    paired(rooms)
    assert rooms.leave(AGENT) == [Send(PHONE, PeerLeft())]
    assert rooms.room_count == 0
    assert rooms.role(PHONE) is Role.ORPHAN
    assert codes(rooms.relay(PHONE, b"x")) == [(PHONE, "peer_gone")]
    assert rooms.refusal(PHONE, PairRefresh) is ErrorCode.NOT_IN_ROOM
    # The orphan may start over on the same socket; leaving forgets it entirely.
    assert rooms.refusal(PHONE, Rendezvous) is None
    assert rooms.leave(PHONE) == []
    assert rooms.role(PHONE) is Role.NONE


def test_leave_of_unknown_connection_is_silent(rooms: Rooms) -> None:
    assert rooms.leave(99) == []


def test_rendezvous_wait_match_and_third_refused(rooms: Rooms) -> None:
    minted = Minted()
    assert rooms.rendezvous("abc", AGENT, minted) == [Send(AGENT, RendezvousWaiting())]
    assert minted.calls == 0
    assert rooms.rendezvous("abc", PHONE, minted) == [
        Send(AGENT, RendezvousMatched(ice_servers=ICE)),
        Send(PHONE, RendezvousMatched(ice_servers=ICE)),
    ]
    assert minted.calls == 1
    assert codes(rooms.rendezvous("abc", THIRD, minted)) == [(THIRD, "room_full")]
    assert rooms.role(THIRD) is Role.NONE
    assert rooms.relay(PHONE, b"k") == [Send(AGENT, Relay(data=b"k"))]


def test_rendezvous_ids_are_separate_rooms(rooms: Rooms) -> None:
    rooms.rendezvous("one", AGENT, Minted())
    assert codes(rooms.rendezvous("two", PHONE, Minted())) == [(PHONE, "RendezvousWaiting")]
    assert codes(rooms.relay(AGENT, b"x")) == [(AGENT, "peer_gone")]


def test_rendezvous_leave_then_rematch(rooms: Rooms) -> None:
    rooms.rendezvous("abc", AGENT, Minted())
    rooms.rendezvous("abc", PHONE, Minted())
    assert rooms.leave(PHONE) == [Send(AGENT, PeerLeft())]
    # The phone reconnects on a new socket and presents the id again.
    assert codes(rooms.rendezvous("abc", THIRD, Minted())) == [
        (AGENT, "RendezvousMatched"),
        (THIRD, "RendezvousMatched"),
    ]
    rooms.leave(AGENT)
    rooms.leave(THIRD)
    assert rooms.room_count == 0


def test_many_rooms_do_not_interfere(rooms: Rooms) -> None:
    a = rooms.create_pairing(AGENT, "A")
    b = rooms.create_pairing(THIRD, "B")
    assert a != b
    rooms.join_pairing(a, PHONE, "pa", first_use=True, ice_servers=Minted())
    rooms.join_pairing(b, FOURTH, "pb", first_use=True, ice_servers=Minted())
    assert rooms.relay(PHONE, b"1") == [Send(AGENT, Relay(data=b"1"))]
    assert rooms.relay(FOURTH, b"2") == [Send(THIRD, Relay(data=b"2"))]
