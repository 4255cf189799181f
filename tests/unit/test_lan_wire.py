"""The pure parts of the LAN connection: record framing, addresses, which pairing a handshake
message belongs to (trial decryption), and fast-path frames sealed as Noise transport messages."""

from __future__ import annotations

import os
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.keys import generate_identity, public_bytes
from crypto.noise import MAX_MESSAGE_LEN
from crypto.records import PairingRecord
from peer_agent.errors import InterceptionError
from peer_agent.fast_path import MAX_FAST_FRAME
from peer_agent.frames import HEADER_BYTES, decode_frame, encode_frame
from peer_agent.handshake import LAN_PROLOGUE, FrameReceived, Kind, SecureSession, SignalReceived, hello_for
from peer_agent.lan_listener import answerable, identify
from peer_agent.lan_signal import (
    MAX_ENVELOPE,
    MAX_FIRST_ENVELOPE,
    LanWireError,
    parse_address,
    parse_header,
    record_header,
)
from signaling.schema import Bye


def record(peer_key: bytes, secret: bytes, role: str = "responder", last_seen: float = 1.0,
           removed_at: float | None = None, name: str = "Peer") -> PairingRecord:
    return PairingRecord(peer_name=name, peer_key=peer_key, pair_secret=secret, role=role,  # type: ignore[arg-type]
                         server="", paired_at=0.0, last_seen=last_seen, removed_at=removed_at)


def lan_sessions(agent_id, peer_id, secret: bytes, prologue: bytes = LAN_PROLOGUE):
    agent = SecureSession.for_reconnect(role="responder", hello=hello_for("Agent", agent_id, "pc"),
                                        identity=agent_id, pair_secret=secret, peer_key=public_bytes(peer_id),
                                        prologue=prologue)
    peer = SecureSession.for_reconnect(role="initiator", hello=hello_for("Peer", peer_id, "cli"),
                                       identity=peer_id, pair_secret=secret, peer_key=public_bytes(agent_id),
                                       prologue=prologue)
    return agent, peer


# -- framing ------------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=MAX_ENVELOPE))
def test_header_round_trip(length: int) -> None:
    assert parse_header(record_header(length)) == length


@pytest.mark.parametrize("length", [0, MAX_ENVELOPE + 1, 2**32 - 1])
def test_empty_and_oversized_records_are_refused(length: int) -> None:
    with pytest.raises(LanWireError):
        parse_header(length.to_bytes(4, "big"))


def test_the_first_record_has_a_lower_cap() -> None:
    assert parse_header(record_header(MAX_FIRST_ENVELOPE), MAX_FIRST_ENVELOPE) == MAX_FIRST_ENVELOPE
    with pytest.raises(LanWireError):
        parse_header(record_header(MAX_FIRST_ENVELOPE + 1), MAX_FIRST_ENVELOPE)


@pytest.mark.parametrize(("text", "expected"), [
    ("198.51.100.1:40123", ("198.51.100.1", 40123)),
    ("[fe80::1%veth0]:9", ("fe80::1%veth0", 9)),
    ("[2001:db8::2]:65535", ("2001:db8::2", 65535)),
])
def test_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["198.51.100.1", "198.51.100.1:0", "198.51.100.1:70000", "host.lan:80",
                                  ":80", "198.51.100.1:x"])
def test_bad_addresses_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


# -- which pairing ------------------------------------------------------------------------------


def test_identify_finds_the_pairing_among_several_and_nothing_else() -> None:
    agent_id, peer_id = generate_identity(), generate_identity()
    secret = secrets.token_bytes(32)
    others = [record(public_bytes(generate_identity()), secrets.token_bytes(32), last_seen=i) for i in range(5)]
    mine = record(public_bytes(peer_id), secret, last_seen=2.5)
    _, peer = lan_sessions(agent_id, peer_id, secret)
    msg1 = peer.start()
    hello = hello_for("Agent", agent_id, "pc")
    assert identify(msg1, [*others[:3], mine, *others[3:]], hello, agent_id) == mine
    # The same pairing but the server route's prologue: not a LAN handshake message.
    _, server_peer = lan_sessions(agent_id, peer_id, secret, prologue=b"peerbeam/1 reconnect")
    assert identify(server_peer.start(), [mine], hello, agent_id) is None
    # Right key, wrong pair secret; right secret, another device's key.
    assert identify(msg1, [record(public_bytes(peer_id), secrets.token_bytes(32))], hello, agent_id) is None
    assert identify(msg1, [record(public_bytes(generate_identity()), secret)], hello, agent_id) is None
    # Not a handshake message at all.
    assert identify(b"", [mine], hello, agent_id) is None
    assert identify(bytes([Kind.TRANSPORT]) + msg1[1:], [mine], hello, agent_id) is None
    assert identify(os.urandom(len(msg1)), [mine], hello, agent_id) is None


def test_a_stranger_with_its_own_keys_and_the_agents_public_key_is_not_identified() -> None:
    agent_id, peer_id, stranger_id = generate_identity(), generate_identity(), generate_identity()
    mine = record(public_bytes(peer_id), secrets.token_bytes(32))
    stranger = SecureSession.for_reconnect(role="initiator", hello=hello_for("Peer", stranger_id, "cli"),
                                           identity=stranger_id, pair_secret=secrets.token_bytes(32),
                                           peer_key=public_bytes(agent_id), prologue=LAN_PROLOGUE)
    assert identify(stranger.start(), [mine], hello_for("Agent", agent_id, "pc"), agent_id) is None


def test_answerable_keeps_the_responder_side_and_tombstones_most_recent_first() -> None:
    key = lambda: public_bytes(generate_identity())  # noqa: E731
    records = [record(key(), secrets.token_bytes(32), last_seen=1.0),
               record(key(), secrets.token_bytes(32), role="initiator", last_seen=9.0),
               record(key(), secrets.token_bytes(32), last_seen=5.0, removed_at=6.0)]
    assert answerable(records) == [records[2], records[0]]
    many = [record(key(), secrets.token_bytes(32), last_seen=float(i)) for i in range(70)]
    assert [r.last_seen for r in answerable(many)] == [float(i) for i in range(69, 5, -1)]


# -- fast-path frames ---------------------------------------------------------------------------


def test_frames_travel_as_transport_messages_in_one_nonce_sequence_with_signals() -> None:
    agent_id, peer_id = generate_identity(), generate_identity()
    agent, peer = lan_sessions(agent_id, peer_id, secrets.token_bytes(32))
    out, _ = agent.receive(peer.start())
    peer.receive(out[0])
    # The largest frame that fits one Noise message (65535 bytes with the tag)...
    payload = os.urandom(MAX_FAST_FRAME - HEADER_BYTES)
    frame = encode_frame("0123456789abcdef", 0, payload)
    sealed = peer.seal_frame(frame)
    assert sealed[0] == Kind.FRAME and len(sealed) == 1 + MAX_MESSAGE_LEN
    assert payload[:64] not in sealed
    # ...and a signal sealed after it: the receiver opens them in the same order.
    signal = peer.seal(Bye(message="after the frame"))
    assert agent.receive(sealed) == ([], [FrameReceived(frame)])
    assert decode_frame(frame).payload == payload
    assert agent.receive(signal) == ([], [SignalReceived(Bye(message="after the frame"))])
    # One byte more does not fit a Noise message.
    with pytest.raises(ValueError):
        peer.seal_frame(bytes(MAX_FAST_FRAME + 1))


def test_a_tampered_or_replayed_frame_kills_the_session() -> None:
    agent_id, peer_id = generate_identity(), generate_identity()
    agent, peer = lan_sessions(agent_id, peer_id, secrets.token_bytes(32))
    out, _ = agent.receive(peer.start())
    peer.receive(out[0])
    sealed = peer.seal_frame(encode_frame("0123456789abcdef", 0, b"x" * 100))
    agent.receive(sealed)
    with pytest.raises(InterceptionError):  # replayed: the nonce has moved on
        agent.receive(sealed)
    agent2, peer2 = lan_sessions(agent_id, peer_id, secrets.token_bytes(32))
    out, _ = agent2.receive(peer2.start())
    peer2.receive(out[0])
    bad = bytearray(peer2.seal_frame(encode_frame("0123456789abcdef", 0, b"x" * 100)))
    bad[40] ^= 1
    with pytest.raises(InterceptionError):
        agent2.receive(bytes(bad))


def test_no_frames_before_the_handshake() -> None:
    agent_id, peer_id = generate_identity(), generate_identity()
    agent, _ = lan_sessions(agent_id, peer_id, secrets.token_bytes(32))
    with pytest.raises(RuntimeError):
        agent.seal_frame(b"frame")
    with pytest.raises(InterceptionError):
        agent.receive(bytes([Kind.FRAME]) + os.urandom(40))
