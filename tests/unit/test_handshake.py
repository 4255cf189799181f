"""The end-to-end session layer, two devices in memory, no server: pairing, reconnect, tampering."""

from __future__ import annotations

import pytest

from crypto.kdf import pair_secret
from crypto.keys import generate_identity, public_bytes
from crypto.link import new_secret
from peer_agent.errors import InterceptionError
from peer_agent.handshake import (
    HandshakeCompleted,
    Kind,
    PeerAborted,
    SecureSession,
    SignalReceived,
    abort_envelope,
    hello_for,
)
from signaling.schema import PairAccept, Sdp


def pair_sessions(qr_secret: bytes | None = None):
    agent_id, phone_id = generate_identity(), generate_identity()
    secret = new_secret()
    agent = SecureSession.for_pairing(role="responder", hello=hello_for("PC", agent_id, "pc"),
                                      identity=agent_id, qr_secret=secret, agent_key=None)
    phone = SecureSession.for_pairing(role="initiator", hello=hello_for("Phone", phone_id, "phone"),
                                      identity=phone_id, qr_secret=qr_secret or secret,
                                      agent_key=public_bytes(agent_id))
    return agent, phone, agent_id, phone_id


def run_handshake(initiator: SecureSession, responder: SecureSession):
    msg1 = initiator.start()
    out, events_r = responder.receive(msg1)
    assert len(out) == 1
    none, events_i = initiator.receive(out[0])
    assert none == []
    (done_r,), (done_i,) = events_r, events_i
    assert isinstance(done_r, HandshakeCompleted) and isinstance(done_i, HandshakeCompleted)
    return done_i, done_r


def test_pairing_handshake_agrees_on_code_and_secrets():
    agent, phone, agent_id, phone_id = pair_sessions()
    done_phone, done_agent = run_handshake(phone, agent)
    assert done_phone.code == done_agent.code and len(done_phone.code) == 6
    assert done_phone.handshake_hash == done_agent.handshake_hash
    assert pair_secret(done_phone.chaining_key) == pair_secret(done_agent.chaining_key)
    assert done_agent.peer.name == "Phone" and done_agent.peer.identity_key == public_bytes(phone_id)
    assert done_phone.peer.identity_key == public_bytes(agent_id)
    # signals flow both ways, encrypted
    sealed = phone.seal(Sdp(type="offer", sdp="v=0"))
    assert sealed[0] == Kind.TRANSPORT and b"v=0" not in sealed
    assert agent.receive(sealed) == ([], [SignalReceived(Sdp(type="offer", sdp="v=0"))])
    assert phone.receive(agent.seal(PairAccept()))[1] == [SignalReceived(PairAccept())]


def test_wrong_qr_secret_is_interception():
    agent, phone, *_ = pair_sessions(qr_secret=new_secret())
    with pytest.raises(InterceptionError):
        agent.receive(phone.start())


@pytest.mark.parametrize("where", ["ephemeral", "payload"])
def test_server_swapping_ephemeral_or_flipping_bytes_aborts(where):
    agent, phone, *_ = pair_sessions()
    msg1 = bytearray(phone.start())
    if where == "ephemeral":
        msg1[1:33] = public_bytes(generate_identity())  # a server substituting its own key
    else:
        msg1[-1] ^= 1
    with pytest.raises(InterceptionError):
        agent.receive(bytes(msg1))
    _, phone_again, *_ = pair_sessions()
    with pytest.raises(InterceptionError):  # the session is dead for good
        agent.receive(phone_again.start())


def test_flipped_transport_byte_and_replay_are_refused():
    agent, phone, *_ = pair_sessions()
    run_handshake(phone, agent)
    sealed = bytearray(phone.seal(PairAccept()))
    sealed[5] ^= 0x80
    with pytest.raises(InterceptionError):
        agent.receive(bytes(sealed))
    agent2, phone2, *_ = pair_sessions()
    run_handshake(phone2, agent2)
    good = phone2.seal(PairAccept())
    agent2.receive(good)
    with pytest.raises(InterceptionError):  # same nonce twice
        agent2.receive(good)


def test_agent_announcing_another_identity_is_interception():
    agent_id, phone_id, other = generate_identity(), generate_identity(), generate_identity()
    secret = new_secret()
    # The phone expects `other` (e.g. a QR from someone else) but talks to agent_id.
    phone = SecureSession.for_pairing(role="initiator", hello=hello_for("P", phone_id, "phone"),
                                      identity=phone_id, qr_secret=secret, agent_key=public_bytes(other))
    agent = SecureSession.for_pairing(role="responder", hello=hello_for("A", agent_id, "pc"),
                                      identity=agent_id, qr_secret=secret, agent_key=None)
    with pytest.raises(InterceptionError):
        agent.receive(phone.start())


def test_reconnect_with_record_and_wrong_record():
    a_id, b_id = generate_identity(), generate_identity()
    secret = new_secret()
    a = SecureSession.for_reconnect(role="responder", hello=hello_for("A", a_id, "pc"), identity=a_id,
                                    pair_secret=secret, peer_key=public_bytes(b_id))
    b = SecureSession.for_reconnect(role="initiator", hello=hello_for("B", b_id, "cli"), identity=b_id,
                                    pair_secret=secret, peer_key=public_bytes(a_id))
    done_b, done_a = run_handshake(b, a)
    assert done_a.code == done_b.code
    # A device with the right rendezvous secret but a different key (a deleted and re-made
    # identity, or someone who learned the rid) is refused.
    c_id = generate_identity()
    a2 = SecureSession.for_reconnect(role="responder", hello=hello_for("A", a_id, "pc"), identity=a_id,
                                     pair_secret=secret, peer_key=public_bytes(b_id))
    c = SecureSession.for_reconnect(role="initiator", hello=hello_for("C", c_id, "cli"), identity=c_id,
                                    pair_secret=secret, peer_key=public_bytes(a_id))
    with pytest.raises(InterceptionError):
        a2.receive(c.start())
    # And a wrong pair secret with the right keys fails too.
    a3 = SecureSession.for_reconnect(role="responder", hello=hello_for("A", a_id, "pc"), identity=a_id,
                                     pair_secret=secret, peer_key=public_bytes(b_id))
    b3 = SecureSession.for_reconnect(role="initiator", hello=hello_for("B", b_id, "cli"), identity=b_id,
                                     pair_secret=new_secret(), peer_key=public_bytes(a_id))
    with pytest.raises(InterceptionError):
        a3.receive(b3.start())


def test_pairing_message_cannot_be_replayed_as_reconnect():
    agent, phone, agent_id, phone_id = pair_sessions()
    msg1 = phone.start()
    recon = SecureSession.for_reconnect(role="responder", hello=hello_for("A", agent_id, "pc"),
                                        identity=agent_id, pair_secret=new_secret(),
                                        peer_key=public_bytes(phone_id))
    with pytest.raises(InterceptionError):
        recon.receive(msg1)


def test_abort_envelope_and_garbage():
    agent, phone, *_ = pair_sessions()
    assert agent.receive(abort_envelope("interception")) == ([], [PeerAborted("interception")])
    for junk in (b"", b"\x09abc", b"\x02" + b"x" * 40):
        fresh, *_ = pair_sessions()
        with pytest.raises(InterceptionError):
            fresh.receive(junk)
