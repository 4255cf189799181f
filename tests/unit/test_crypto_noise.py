"""Noise NKpsk0 / KKpsk0: published vectors, an independent implementation, and attacks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

from crypto.errors import NoiseError
from crypto.keys import private_bytes, public_bytes
from crypto.noise import MAX_MESSAGE_LEN, HandshakeState, Pattern, Transport

NOISE_VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "noise.json").read_text())
PROLOGUE = b"peerbeam/v1 test"
PSK = bytes(range(32))


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def key(value: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(h(value))


def pattern_of(name: str) -> Pattern:
    pattern = name.split("_")[1]
    assert pattern in ("NKpsk0", "KKpsk0")
    return pattern  # type: ignore[return-value]


def vector_parties(v: dict[str, Any]) -> tuple[HandshakeState, HandshakeState]:
    pattern = pattern_of(v["protocol_name"])
    initiator = HandshakeState(
        pattern, initiator=True, prologue=h(v["init_prologue"]), psk=h(v["init_psk"]),
        s=key(v["init_static"]) if "init_static" in v else None,
        rs=h(v["init_remote_static"]), e=key(v["init_ephemeral"]),
    )
    responder = HandshakeState(
        pattern, initiator=False, prologue=h(v["resp_prologue"]), psk=h(v["resp_psk"]),
        s=key(v["resp_static"]),
        rs=h(v["resp_remote_static"]) if "resp_remote_static" in v else None,
        e=key(v["resp_ephemeral"]),
    )
    return initiator, responder


def test_vector_file_holds_exactly_our_two_protocols() -> None:
    names = sorted(v["protocol_name"] for v in NOISE_VECTORS["vectors"])
    assert names == ["Noise_KKpsk0_25519_AESGCM_SHA256", "Noise_NKpsk0_25519_AESGCM_SHA256"]


@pytest.mark.parametrize("v", NOISE_VECTORS["vectors"], ids=lambda v: v["protocol_name"])
def test_published_vector(v: dict[str, Any]) -> None:
    # The remote statics in the file are the public halves of the other side's static.
    assert public_bytes(key(v["resp_static"])) == h(v["init_remote_static"])
    if "init_static" in v:
        assert public_bytes(key(v["init_static"])) == h(v["resp_remote_static"])
    initiator, responder = vector_parties(v)
    first, second, *transport = v["messages"]

    message = initiator.write_message(h(first["payload"]))
    assert message.hex() == first["ciphertext"]
    # This cacophony revision records h after the first message (see noise.json "notes").
    assert initiator.handshake_hash.hex() == v["handshake_hash"]
    assert responder.read_message(message) == h(first["payload"])
    assert responder.handshake_hash.hex() == v["handshake_hash"]

    message = responder.write_message(h(second["payload"]))
    assert message.hex() == second["ciphertext"]
    assert initiator.read_message(message) == h(second["payload"])
    assert initiator.finished and responder.finished
    assert initiator.handshake_hash == responder.handshake_hash

    ti, tr = initiator.transport(), responder.transport()
    for index, step in enumerate(transport):
        sender, receiver = (ti, tr) if index % 2 == 0 else (tr, ti)
        ciphertext = sender.encrypt(h(step["payload"]))
        assert ciphertext.hex() == step["ciphertext"]
        assert receiver.decrypt(ciphertext) == h(step["payload"])


@pytest.mark.parametrize("v", NOISE_VECTORS["vectors"], ids=lambda v: v["protocol_name"])
def test_final_handshake_hash_matches_noiseprotocol(v: dict[str, Any]) -> None:
    initiator, responder = vector_parties(v)
    responder.read_message(initiator.write_message(h(v["messages"][0]["payload"])))
    initiator.read_message(responder.write_message(h(v["messages"][1]["payload"])))

    theirs = NoiseConnection.from_name(v["protocol_name"].encode())
    theirs.set_as_initiator()
    theirs.set_psks(h(v["init_psk"]))
    theirs.set_prologue(h(v["init_prologue"]))
    if "init_static" in v:
        theirs.set_keypair_from_private_bytes(Keypair.STATIC, h(v["init_static"]))
    theirs.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, h(v["init_remote_static"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ephemeral already set": fine for a vector
        theirs.set_keypair_from_private_bytes(Keypair.EPHEMERAL, h(v["init_ephemeral"]))
        theirs.start_handshake()
    assert bytes(theirs.write_message(h(v["messages"][0]["payload"]))).hex() == (
        v["messages"][0]["ciphertext"]
    )
    theirs.read_message(h(v["messages"][1]["ciphertext"]))
    assert theirs.handshake_finished
    assert theirs.get_handshake_hash() == initiator.handshake_hash


# --- interoperability with the noiseprotocol package, both directions -------------------------


def their_side(pattern: Pattern, *, initiator: bool, s: X25519PrivateKey | None,
               rs: bytes | None, psk: bytes = PSK) -> NoiseConnection:
    conn = NoiseConnection.from_name(f"Noise_{pattern}_25519_AESGCM_SHA256".encode())
    conn.set_as_initiator() if initiator else conn.set_as_responder()
    conn.set_psks(psk)
    conn.set_prologue(PROLOGUE)
    if s is not None:
        conn.set_keypair_from_private_bytes(Keypair.STATIC, private_bytes(s))
    if rs is not None:
        conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, rs)
    conn.start_handshake()
    return conn


def keys_for(pattern: Pattern) -> tuple[X25519PrivateKey | None, X25519PrivateKey]:
    """(initiator static or None for NK, responder static)."""
    return (X25519PrivateKey.generate() if pattern == "KKpsk0" else None,
            X25519PrivateKey.generate())


def exchange_transport(ours: Transport, theirs: NoiseConnection) -> None:
    for size in (0, 1, 100, 5000, MAX_MESSAGE_LEN - 16):
        data = bytes([size % 251]) * size
        assert bytes(theirs.decrypt(ours.encrypt(data))) == data
        assert ours.decrypt(bytes(theirs.encrypt(data[::-1]))) == data[::-1]


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_ours_initiator_theirs_responder(pattern: Pattern) -> None:
    i_s, r_s = keys_for(pattern)
    ours = HandshakeState(pattern, initiator=True, prologue=PROLOGUE, psk=PSK, s=i_s,
                          rs=public_bytes(r_s))
    theirs = their_side(pattern, initiator=False, s=r_s,
                        rs=public_bytes(i_s) if i_s is not None else None)
    assert bytes(theirs.read_message(ours.write_message(b"hello"))) == b"hello"
    assert ours.read_message(bytes(theirs.write_message(b"welcome"))) == b"welcome"
    assert ours.finished and theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    transport = ours.transport()
    assert transport.remote_static == public_bytes(r_s)
    exchange_transport(transport, theirs)


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_theirs_initiator_ours_responder(pattern: Pattern) -> None:
    i_s, r_s = keys_for(pattern)
    theirs = their_side(pattern, initiator=True, s=i_s, rs=public_bytes(r_s))
    ours = HandshakeState(pattern, initiator=False, prologue=PROLOGUE, psk=PSK, s=r_s,
                          rs=public_bytes(i_s) if i_s is not None else None)
    assert ours.read_message(bytes(theirs.write_message(b"hello"))) == b"hello"
    assert bytes(theirs.read_message(ours.write_message(b"welcome"))) == b"welcome"
    assert ours.handshake_hash == theirs.get_handshake_hash()
    transport = ours.transport()
    assert transport.remote_static == (public_bytes(i_s) if i_s is not None else None)
    exchange_transport(transport, theirs)


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_theirs_with_another_psk_cannot_talk_to_ours(pattern: Pattern) -> None:
    i_s, r_s = keys_for(pattern)
    theirs = their_side(pattern, initiator=True, s=i_s, rs=public_bytes(r_s), psk=bytes(32))
    ours = HandshakeState(pattern, initiator=False, prologue=PROLOGUE, psk=PSK, s=r_s,
                          rs=public_bytes(i_s) if i_s is not None else None)
    with pytest.raises(NoiseError):
        ours.read_message(bytes(theirs.write_message(b"hello")))


# --- our own pairs, and what an attacker can try -------------------------------------------


def pair(pattern: Pattern, *, psk_i: bytes = PSK, psk_r: bytes = PSK,
         prologue_r: bytes = PROLOGUE) -> tuple[HandshakeState, HandshakeState,
                                                X25519PrivateKey | None, X25519PrivateKey]:
    i_s, r_s = keys_for(pattern)
    initiator = HandshakeState(pattern, initiator=True, prologue=PROLOGUE, psk=psk_i, s=i_s,
                               rs=public_bytes(r_s))
    responder = HandshakeState(pattern, initiator=False, prologue=prologue_r, psk=psk_r, s=r_s,
                               rs=public_bytes(i_s) if i_s is not None else None)
    return initiator, responder, i_s, r_s


def complete(pattern: Pattern) -> tuple[Transport, Transport]:
    initiator, responder, _, _ = pair(pattern)
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    return initiator.transport(), responder.transport()


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_both_sides_agree_on_hash_chaining_key_and_keys(pattern: Pattern) -> None:
    ti, tr = complete(pattern)
    assert ti.handshake_hash == tr.handshake_hash and len(ti.handshake_hash) == 32
    assert ti.chaining_key == tr.chaining_key and len(ti.chaining_key) == 32
    assert tr.decrypt(ti.encrypt(b"a", ad=b"x"), ad=b"x") == b"a"
    assert ti.decrypt(tr.encrypt(b"b")) == b"b"
    # Two runs never share keys: fresh ephemerals.
    ti2, _ = complete(pattern)
    assert ti2.handshake_hash != ti.handshake_hash and ti2.chaining_key != ti.chaining_key


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
@pytest.mark.parametrize("which", [0, 1])
def test_flipped_byte_in_every_position_of_a_handshake_message(pattern: Pattern,
                                                              which: int) -> None:
    length = 32 + len(b"payload") + 16  # e, then the encrypted payload and its tag
    for position in range(length):
        initiator, responder, _, _ = pair(pattern)
        message = initiator.write_message(b"payload")
        if which == 1:
            responder.read_message(message)
            message = responder.write_message(b"payload")
            reader = initiator
        else:
            reader = responder
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        with pytest.raises(NoiseError):
            reader.read_message(bytes(tampered))


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_wrong_psk_fails(pattern: Pattern) -> None:
    initiator, responder, _, _ = pair(pattern, psk_r=bytes(32))
    with pytest.raises(NoiseError):
        responder.read_message(initiator.write_message())


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_different_prologue_fails(pattern: Pattern) -> None:
    initiator, responder, _, _ = pair(pattern, prologue_r=b"other")
    with pytest.raises(NoiseError):
        responder.read_message(initiator.write_message())


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_swapped_ephemeral_key_fails(pattern: Pattern) -> None:
    # A relay that substitutes its own ephemeral public key (and keeps the rest) is detected:
    # the psk and the DH results no longer match.
    initiator, responder, _, _ = pair(pattern)
    message = initiator.write_message(b"hi")
    forged = public_bytes(X25519PrivateKey.generate()) + message[32:]
    with pytest.raises(NoiseError):
        responder.read_message(forged)
    initiator, responder, _, _ = pair(pattern)
    responder.read_message(initiator.write_message())
    reply = responder.write_message()
    with pytest.raises(NoiseError):
        initiator.read_message(public_bytes(X25519PrivateKey.generate()) + reply[32:])


def test_swapped_agent_key_in_nk_fails() -> None:
    # The server replaces pk_agent in what the phone sees: the agent cannot read message 1.
    agent = X25519PrivateKey.generate()
    attacker = X25519PrivateKey.generate()
    phone = HandshakeState("NKpsk0", initiator=True, prologue=PROLOGUE, psk=PSK,
                           rs=public_bytes(attacker))
    agent_side = HandshakeState("NKpsk0", initiator=False, prologue=PROLOGUE, psk=PSK, s=agent)
    with pytest.raises(NoiseError):
        agent_side.read_message(phone.write_message())


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_wrong_remote_static_in_kk_fails(side: str) -> None:
    i_s, r_s, stranger = (X25519PrivateKey.generate() for _ in range(3))
    initiator = HandshakeState(
        "KKpsk0", initiator=True, prologue=PROLOGUE, psk=PSK, s=i_s,
        rs=public_bytes(stranger if side == "initiator" else r_s))
    responder = HandshakeState(
        "KKpsk0", initiator=False, prologue=PROLOGUE, psk=PSK, s=r_s,
        rs=public_bytes(stranger if side == "responder" else i_s))
    with pytest.raises(NoiseError):
        responder.read_message(initiator.write_message())


def test_kk_impostor_with_the_psk_but_not_the_static_key_fails() -> None:
    # Knowing the pair secret is not enough: the static private key is needed too ("ss").
    i_s, r_s, impostor = (X25519PrivateKey.generate() for _ in range(3))
    fake = HandshakeState("KKpsk0", initiator=True, prologue=PROLOGUE, psk=PSK, s=impostor,
                          rs=public_bytes(r_s))
    responder = HandshakeState("KKpsk0", initiator=False, prologue=PROLOGUE, psk=PSK, s=r_s,
                               rs=public_bytes(i_s))
    with pytest.raises(NoiseError):
        responder.read_message(fake.write_message())


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_short_and_oversized_messages_are_rejected(pattern: Pattern) -> None:
    for length in list(range(0, 48)) + [MAX_MESSAGE_LEN + 1]:
        _, responder, _, _ = pair(pattern)
        with pytest.raises(NoiseError):
            responder.read_message(bytes(length))


def test_low_order_ephemeral_is_rejected() -> None:
    agent = X25519PrivateKey.generate()
    responder = HandshakeState("NKpsk0", initiator=False, prologue=PROLOGUE, psk=PSK, s=agent)
    with pytest.raises(NoiseError):
        responder.read_message(bytes(32) + bytes(16))


@pytest.mark.parametrize("pattern", ["NKpsk0", "KKpsk0"])
def test_out_of_turn(pattern: Pattern) -> None:
    initiator, responder, _, _ = pair(pattern)
    with pytest.raises(NoiseError):
        initiator.read_message(bytes(48))  # the initiator speaks first
    initiator, responder, _, _ = pair(pattern)
    with pytest.raises(RuntimeError):
        responder.write_message()
    message = initiator.write_message()
    with pytest.raises(RuntimeError):
        initiator.write_message()
    responder.read_message(message)
    with pytest.raises(NoiseError):
        responder.read_message(message)  # now it is the responder's turn to write
    with pytest.raises(RuntimeError):
        responder.transport()


def test_a_failed_handshake_stays_dead() -> None:
    initiator, responder, _, _ = pair("KKpsk0")
    good = initiator.write_message()
    with pytest.raises(NoiseError):
        responder.read_message(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(NoiseError):
        responder.read_message(good)


def test_transport_rejects_tampering_replay_reordering_and_wrong_ad() -> None:
    ti, tr = complete("NKpsk0")
    first, second = ti.encrypt(b"one"), ti.encrypt(b"two")
    assert tr.decrypt(first) == b"one"
    for attack in (first, second[:-1] + bytes([second[-1] ^ 1]), second[:15]):
        _, tr2 = complete("NKpsk0")
        with pytest.raises(NoiseError):
            tr2.decrypt(attack)  # wrong keys for a fresh session
    with pytest.raises(NoiseError):
        tr.decrypt(first)  # replay
    ti, tr = complete("NKpsk0")
    first, second = ti.encrypt(b"one"), ti.encrypt(b"two")
    with pytest.raises(NoiseError):
        tr.decrypt(second)  # reordered
    with pytest.raises(NoiseError):
        tr.decrypt(first)  # a failure is fatal: the transport stays broken
    ti, tr = complete("NKpsk0")
    with pytest.raises(NoiseError):
        tr.decrypt(ti.encrypt(b"x", ad=b"a"), ad=b"b")


def test_message_size_limits() -> None:
    ti, tr = complete("NKpsk0")
    biggest = bytes(MAX_MESSAGE_LEN - 16)
    assert tr.decrypt(ti.encrypt(biggest)) == biggest
    with pytest.raises(ValueError):
        ti.encrypt(biggest + b"x")
    with pytest.raises(NoiseError):
        tr.decrypt(bytes(MAX_MESSAGE_LEN + 1))
    initiator, responder, _, _ = pair("NKpsk0")
    with pytest.raises(ValueError):
        initiator.write_message(bytes(MAX_MESSAGE_LEN - 32 - 16 + 1))
    # The refused write changed nothing: the largest allowed message still goes through.
    biggest_payload = bytes(MAX_MESSAGE_LEN - 32 - 16)
    message = initiator.write_message(biggest_payload)
    assert len(message) == MAX_MESSAGE_LEN
    assert responder.read_message(message) == biggest_payload


def test_transport_is_split_once() -> None:
    initiator, responder, _, _ = pair("NKpsk0")
    responder.read_message(initiator.write_message())
    initiator.read_message(responder.write_message())
    first = initiator.transport()
    assert initiator.transport() is first  # a second Split() would reuse nonces


def test_remote_static_reported() -> None:
    ti, tr = complete("NKpsk0")
    assert tr.remote_static is None and ti.remote_static is not None and len(ti.remote_static) == 32


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(pattern="NKpsk0", initiator=True, psk=bytes(31), rs=bytes(32)),
        dict(pattern="NKpsk0", initiator=True, psk=PSK),  # no rs
        dict(pattern="NKpsk0", initiator=False, psk=PSK),  # no s
        dict(pattern="KKpsk0", initiator=True, psk=PSK, rs=bytes(32)),  # no s
        dict(pattern="KKpsk0", initiator=False, psk=PSK, s=X25519PrivateKey.generate()),  # no rs
        dict(pattern="KKpsk0", initiator=False, psk=PSK, s=X25519PrivateKey.generate(),
             rs=bytes(31)),
    ],
)
def test_missing_or_malformed_keys_are_local_errors(kwargs: dict[str, Any]) -> None:
    pattern = kwargs.pop("pattern")
    with pytest.raises(ValueError):
        HandshakeState(pattern, prologue=b"", **kwargs)
