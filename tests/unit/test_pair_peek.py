"""pair.peek in memory: the room state machine answers it like a join would, minus every side
effect, and the used-token ledger can be read without writing."""

from __future__ import annotations

import itertools

import pytest

from signaling.rooms import Role, Rooms, Send
from signaling.schema import (
    Error,
    ErrorCode,
    IceServer,
    PairInfo,
    PairJoined,
    PairPeek,
    PeerJoined,
    decode_client,
    decode_server,
    encode,
)
from signaling.store import MemoryStore

AGENT, PHONE, PEEKER = 1, 2, 3
ICE = [IceServer(urls=["stun:198.51.100.1:3478"])]


@pytest.fixture
def rooms() -> Rooms:
    counter = itertools.count(1)
    return Rooms(new_room_id=lambda: next(counter).to_bytes(16, "big"))


def codes(sends: list[Send]) -> list[tuple[int, str]]:
    return [(s.to, s.message.code.value if isinstance(s.message, Error) else type(s.message).__name__)
            for s in sends]


def test_peek_names_the_room_and_changes_nothing(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "Desk PC")
    for _ in range(3):  # any number of looks
        assert rooms.peek(room, PEEKER, used=False, expires_at=1234.5) == [
            Send(PEEKER, PairInfo(name="Desk PC", expires_at=1234.5))
        ]
    # The peeking socket is not bound to anything, and the agent was told nothing.
    assert rooms.role(PEEKER) is Role.NONE
    # The same socket (or any other) may still join: the look burned nothing.
    sends = rooms.join_pairing(room, PEEKER, "Phone", first_use=True, ice_servers=lambda: ICE)
    assert sends == [Send(AGENT, PeerJoined(name="Phone")), Send(PEEKER, PairJoined(peer_name="Desk PC", ice_servers=ICE))]


def test_peek_refusals_are_the_joins_without_telling_the_agent(rooms: Rooms) -> None:
    room = rooms.create_pairing(AGENT, "PC")
    assert codes(rooms.peek(room, PEEKER, used=True, expires_at=0)) == [(PEEKER, "token_used")]
    rooms.join_pairing(room, PHONE, "Phone", first_use=True, ice_servers=lambda: ICE)
    # A second code of a room that a device already joined: full.
    assert codes(rooms.peek(room, PEEKER, used=False, expires_at=0)) == [(PEEKER, "room_full")]
    # A bound socket does not look at other rooms.
    assert codes(rooms.peek(room, PHONE, used=False, expires_at=0)) == [(PHONE, "already_bound")]
    rooms.leave(AGENT)
    assert codes(rooms.peek(room, PEEKER, used=False, expires_at=0)) == [(PEEKER, "peer_gone")]


def test_peek_and_info_on_the_wire() -> None:
    assert encode(PairPeek(token="AQE")) == b'{"t":"pair.peek","token":"AQE","v":1}'
    assert decode_client(b'{"t":"pair.peek","token":"AQE"}') == PairPeek(token="AQE")
    info = PairInfo(name="Desk PC", expires_at=12.5)
    assert decode_server(encode(info)) == info


async def test_seen_reads_the_ledger_without_writing() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    assert not await store.seen(b"t")
    assert not await store.seen(b"t")  # looking did not record it
    assert await store.use_once(b"t", ttl=10)
    assert await store.seen(b"t")
    now[0] += 10
    assert not await store.seen(b"t")  # expired with the token
    await store.close()
