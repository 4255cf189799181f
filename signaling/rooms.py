"""The room state machine of the signaling server: pure, no I/O (the h11 / aioquic way).

Connections are opaque ints chosen by the shell. Every operation returns the messages to send as
``Send(to, message)`` records, in the order they must go out; the shell only delivers them.

Two kinds of rooms:

* a **pairing room** (DESIGN "Pairing"): created by the agent's ``pair.create``, identified by 16
  random bytes sealed inside the token; it holds the agent and at most one joiner. It is gone
  when the agent leaves.
* a **rendezvous room** (DESIGN "Reconnect"): keyed by the rendezvous id both paired devices
  derive; the first presenter waits, the second is matched, a third is refused. It lives while
  anyone is in it, so a device that drops can present the id again and be matched again.

What a socket may ask depends on its role; that is a table (``_REFUSALS``), not nested ifs.
Single use of tokens is not decided here: the shell asks the store and passes ``first_use``.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .errors import SENTENCES, SignalingError, error
from .schema import (
    ClientMessage,
    ErrorCode,
    IceServer,
    JoinRefused,
    PairCreate,
    PairJoin,
    PairInfo,
    PairJoined,
    PairPeek,
    PairRefresh,
    PeerJoined,
    PeerLeft,
    Relay,
    Rendezvous,
    RendezvousMatched,
    RendezvousWaiting,
    ServerMessage,
)

ConnId = int
RoomId = bytes
ROOM_ID_LEN: Final = 16


@dataclass(frozen=True)
class Send:
    """Deliver ``message`` to connection ``to``."""

    to: ConnId
    message: ServerMessage


class Role(enum.Enum):
    NONE = "none"  # never bound (or left cleanly): must authenticate
    AGENT = "agent"  # created a pairing room
    JOINER = "joiner"  # joined a pairing room with a token
    RENDEZVOUS = "rendezvous"  # presented a rendezvous id
    ORPHAN = "orphan"  # was a joiner; the agent left and took the room with it


@dataclass
class _PairingRoom:
    id: RoomId
    agent: ConnId
    agent_name: str
    joiner: ConnId | None = None


@dataclass
class _RendezvousRoom:
    rid: str
    members: list[ConnId] = field(default_factory=list)


_BIND = (PairCreate, PairJoin, Rendezvous)
_BOUND = (Role.AGENT, Role.JOINER, Role.RENDEZVOUS)

# (role, request) -> the error it gets whatever the room looks like. Absent: allowed, and the
# room's state decides (full, alone, ...). A socket binds once: a device that wants a second
# room opens a second socket, so one socket never mixes two conversations.
_REFUSALS: Final[dict[tuple[Role, type[ClientMessage]], ErrorCode]] = {
    **{(role, kind): ErrorCode.ALREADY_BOUND for role in _BOUND for kind in _BIND},
    # A bound socket has no business looking at other rooms' tokens.
    **{(role, PairPeek): ErrorCode.ALREADY_BOUND for role in _BOUND},
    (Role.NONE, PairRefresh): ErrorCode.NOT_IN_ROOM,
    (Role.JOINER, PairRefresh): ErrorCode.NOT_IN_ROOM,
    (Role.RENDEZVOUS, PairRefresh): ErrorCode.NOT_IN_ROOM,
    (Role.ORPHAN, PairRefresh): ErrorCode.NOT_IN_ROOM,
    (Role.NONE, Relay): ErrorCode.NOT_IN_ROOM,
    (Role.ORPHAN, Relay): ErrorCode.PEER_GONE,
}

_REFUSED_TO_AGENT: Final = {
    ErrorCode.TOKEN_USED: "Someone tried to use a pairing code of yours that was already used.",
    ErrorCode.ROOM_FULL: "Another device tried to join after a device had already joined.",
}


def _new_room_id() -> RoomId:
    return secrets.token_bytes(ROOM_ID_LEN)


class Rooms:
    def __init__(self, new_room_id: Callable[[], RoomId] = _new_room_id) -> None:
        self._new_room_id = new_room_id
        self._pairing: dict[RoomId, _PairingRoom] = {}
        self._rendezvous: dict[str, _RendezvousRoom] = {}
        self._member_of: dict[ConnId, _PairingRoom | _RendezvousRoom] = {}
        self._orphans: set[ConnId] = set()

    # ---- queries ---------------------------------------------------------------------------

    def role(self, conn: ConnId) -> Role:
        room = self._member_of.get(conn)
        if isinstance(room, _PairingRoom):
            return Role.AGENT if room.agent == conn else Role.JOINER
        if isinstance(room, _RendezvousRoom):
            return Role.RENDEZVOUS
        return Role.ORPHAN if conn in self._orphans else Role.NONE

    def refusal(self, conn: ConnId, kind: type[ClientMessage]) -> ErrorCode | None:
        """The error ``kind`` gets from this socket in its role, before looking at any room."""
        return _REFUSALS.get((self.role(conn), kind))

    @property
    def room_count(self) -> int:
        return len(self._pairing) + len(self._rendezvous)

    # ---- pairing ---------------------------------------------------------------------------

    def create_pairing(self, conn: ConnId, name: str) -> RoomId:
        self._check(conn, PairCreate)
        room_id = self._new_room_id()
        while room_id in self._pairing:  # only an injected id source can collide
            room_id = self._new_room_id()
        room = _PairingRoom(room_id, agent=conn, agent_name=name)
        self._pairing[room_id] = room
        self._member_of[conn] = room
        self._orphans.discard(conn)
        return room_id

    def refresh(self, conn: ConnId) -> RoomId:
        """The room a fresh token is sealed for: only its agent asks, only while nobody joined."""
        self._check(conn, PairRefresh)
        room = self._member_of[conn]
        assert isinstance(room, _PairingRoom)
        if room.joiner is not None:
            raise SignalingError(ErrorCode.ROOM_FULL, "A device has already joined this pairing.")
        return room.id

    def join_pairing(
        self,
        room_id: RoomId,
        conn: ConnId,
        name: str,
        *,
        first_use: bool,
        ice_servers: Callable[[], list[IceServer]],
    ) -> list[Send]:
        """A device presents a token for ``room_id`` that the shell has authenticated.

        ``first_use`` is the store's verdict on the token id. ``ice_servers`` is called only when
        the join succeeds: TURN credentials go to validated sessions only.
        """
        refused = self.refusal(conn, PairJoin)
        if refused is not None:
            return [Send(conn, error(refused))]
        room = self._pairing.get(room_id)
        if not first_use:
            sends = [Send(conn, error(ErrorCode.TOKEN_USED))]
            if room is not None:
                sends.append(Send(room.agent, _refused_to_agent(ErrorCode.TOKEN_USED)))
            return sends
        if room is None:
            return [
                Send(conn, error(ErrorCode.PEER_GONE, "The device that showed this code is gone."))
            ]
        if room.joiner is not None:
            return [
                Send(conn, error(ErrorCode.ROOM_FULL)),
                Send(room.agent, _refused_to_agent(ErrorCode.ROOM_FULL)),
            ]
        room.joiner = conn
        self._member_of[conn] = room
        self._orphans.discard(conn)
        # The agent hears first: by the time the joiner can send a relay, the agent's socket has
        # the bind notification ahead of it.
        return [
            Send(room.agent, PeerJoined(name=name)),
            Send(conn, PairJoined(peer_name=room.agent_name, ice_servers=ice_servers())),
        ]

    def peek(self, room_id: RoomId, conn: ConnId, *, used: bool, expires_at: float) -> list[Send]:
        """A device looks at an authenticated token for ``room_id`` without claiming it.

        ``used`` is the store's read-only verdict on the token id. Nothing changes here: the
        answer is what ``join_pairing`` would say, minus the side effects, and the agent is not
        told (a peek is not an attempt to join).
        """
        refused = self.refusal(conn, PairPeek)
        if refused is not None:
            return [Send(conn, error(refused))]
        room = self._pairing.get(room_id)
        if used:
            return [Send(conn, error(ErrorCode.TOKEN_USED))]
        if room is None:
            return [
                Send(conn, error(ErrorCode.PEER_GONE, "The device that showed this code is gone."))
            ]
        if room.joiner is not None:
            return [Send(conn, error(ErrorCode.ROOM_FULL))]
        return [Send(conn, PairInfo(name=room.agent_name, expires_at=expires_at))]

    # ---- rendezvous ------------------------------------------------------------------------

    def rendezvous(
        self, rid: str, conn: ConnId, ice_servers: Callable[[], list[IceServer]]
    ) -> list[Send]:
        refused = self.refusal(conn, Rendezvous)
        if refused is not None:
            return [Send(conn, error(refused))]
        room = self._rendezvous.get(rid)
        if room is None:
            room = _RendezvousRoom(rid)
            self._rendezvous[rid] = room
        if len(room.members) >= 2:
            return [Send(conn, error(ErrorCode.ROOM_FULL))]
        room.members.append(conn)
        self._member_of[conn] = room
        self._orphans.discard(conn)
        if len(room.members) == 1:
            return [Send(conn, RendezvousWaiting())]
        waiting = room.members[0]
        servers = ice_servers()
        return [
            Send(waiting, RendezvousMatched(ice_servers=servers)),
            Send(conn, RendezvousMatched(ice_servers=servers)),
        ]

    # ---- relay and leave -------------------------------------------------------------------

    def relay(self, conn: ConnId, data: bytes) -> list[Send]:
        """Route opaque bytes to the other member; the server never looks inside."""
        refused = self.refusal(conn, Relay)
        if refused is not None:
            return [Send(conn, error(refused))]
        other = self._other(conn)
        if other is None:
            return [Send(conn, error(ErrorCode.PEER_GONE))]
        return [Send(other, Relay(data=data))]

    def leave(self, conn: ConnId) -> list[Send]:
        """The socket closed: tell the other member and drop what is empty or ownerless."""
        self._orphans.discard(conn)
        room = self._member_of.pop(conn, None)
        if isinstance(room, _PairingRoom):
            if room.agent == conn:
                del self._pairing[room.id]
                if room.joiner is None:
                    return []
                # The joiner stays connected but its room is gone; a relay now says peer_gone.
                self._member_of.pop(room.joiner, None)
                self._orphans.add(room.joiner)
                return [Send(room.joiner, PeerLeft())]
            room.joiner = None
            return [Send(room.agent, PeerLeft())]
        if isinstance(room, _RendezvousRoom):
            room.members.remove(conn)
            if not room.members:
                del self._rendezvous[room.rid]
                return []
            return [Send(room.members[0], PeerLeft())]
        return []

    # ---- internals -------------------------------------------------------------------------

    def _check(self, conn: ConnId, kind: type[ClientMessage]) -> None:
        refused = self.refusal(conn, kind)
        if refused is not None:
            raise SignalingError(refused)

    def _other(self, conn: ConnId) -> ConnId | None:
        room = self._member_of.get(conn)
        if isinstance(room, _PairingRoom):
            return room.joiner if room.agent == conn else room.agent
        if isinstance(room, _RendezvousRoom):
            return next((m for m in room.members if m != conn), None)
        return None


def _refused_to_agent(code: ErrorCode) -> JoinRefused:
    return JoinRefused(code=code, message=_REFUSED_TO_AGENT.get(code, SENTENCES[code]))
