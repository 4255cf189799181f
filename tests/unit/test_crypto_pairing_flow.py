"""The crypto package end to end, in memory: QR pairing (NKpsk0), records, reconnect (KKpsk0)."""

from __future__ import annotations

import pytest

from crypto import kdf
from crypto.binding import binding_key, binding_mac, verify_binding
from crypto.errors import NoiseError
from crypto.keys import generate_identity, public_bytes
from crypto.link import PairingLink, new_secret, parse_link
from crypto.noise import HandshakeState
from crypto.records import PairingRecord, decode_records, encode_records
from crypto.tokens import TokenSealer

NOW = 1_700_000_000.0
PAIRING_PROLOGUE = b"peerbeam/v1 pairing"
RECONNECT_PROLOGUE = b"peerbeam/v1 reconnect"
AGENT_FP = "sha-256 " + ":".join(["A1"] * 32)
PHONE_FP = "sha-256 " + ":".join(["B2"] * 32)


def test_pair_then_reconnect() -> None:
    server = TokenSealer.generate()
    agent_id, phone_id = generate_identity(), generate_identity()

    # 1-2: the agent gets a token and shows the link; the phone scans it.
    token, claims = server.seal(bytes(16), NOW)
    shown = PairingLink("https://beam.example", token, new_secret(), public_bytes(agent_id))
    scanned = parse_link(shown.to_url())
    assert server.open(scanned.token, NOW + 5).room == claims.room

    # 4: NKpsk0, psk from the QR secret; the phone knows the agent's key from the QR.
    phone = HandshakeState("NKpsk0", initiator=True, prologue=PAIRING_PROLOGUE,
                           psk=kdf.pairing_psk(scanned.secret), rs=scanned.agent_key)
    agent = HandshakeState("NKpsk0", initiator=False, prologue=PAIRING_PROLOGUE,
                           psk=kdf.pairing_psk(shown.secret), s=agent_id)
    agent.read_message(phone.write_message(b'{"name":"phone"}'))
    assert phone.read_message(agent.write_message(b'{"name":"agent"}')) == b'{"name":"agent"}'
    tp, ta = phone.transport(), agent.transport()
    assert kdf.comparison_code(tp.handshake_hash) == kdf.comparison_code(ta.handshake_hash)

    # 5: DTLS binding, each side verifying the other's MAC.
    kp, ka = binding_key(tp.chaining_key), binding_key(ta.chaining_key)
    phone_mac = binding_mac(kp, "initiator", tp.handshake_hash, PHONE_FP, AGENT_FP)
    agent_mac = binding_mac(ka, "responder", ta.handshake_hash, AGENT_FP, PHONE_FP)
    verify_binding(ka, "initiator", ta.handshake_hash, PHONE_FP, AGENT_FP, phone_mac)
    verify_binding(kp, "responder", tp.handshake_hash, AGENT_FP, PHONE_FP, agent_mac)

    # 6: identity exchange over the transport, then records on both sides.
    agent_learns = ta.decrypt(tp.encrypt(public_bytes(phone_id)))
    assert agent_learns == public_bytes(phone_id)
    phone_record = PairingRecord("PC", public_bytes(agent_id), kdf.pair_secret(tp.chaining_key),
                                 "initiator", "https://beam.example", NOW, NOW)
    agent_record = PairingRecord("phone", agent_learns, kdf.pair_secret(ta.chaining_key),
                                 "responder", "https://beam.example", NOW, NOW)
    assert phone_record.pair_secret == agent_record.pair_secret
    phone_record, = decode_records(encode_records([phone_record]))
    agent_record, = decode_records(encode_records([agent_record]))

    # Reconnect: same rendezvous id and LAN tag, then KKpsk0 with the stored keys.
    later = NOW + 3 * 86400
    assert kdf.rendezvous_id(phone_record.pair_secret, kdf.day_of(later)) == kdf.rendezvous_id(
        agent_record.pair_secret, kdf.day_of(later))
    assert kdf.lan_tag(phone_record.pair_secret, kdf.lan_epoch_of(later)) == kdf.lan_tag(
        agent_record.pair_secret, kdf.lan_epoch_of(later))
    phone2 = HandshakeState("KKpsk0", initiator=True, prologue=RECONNECT_PROLOGUE,
                            psk=kdf.reconnect_psk(phone_record.pair_secret), s=phone_id,
                            rs=phone_record.peer_key)
    agent2 = HandshakeState("KKpsk0", initiator=False, prologue=RECONNECT_PROLOGUE,
                            psk=kdf.reconnect_psk(agent_record.pair_secret), s=agent_id,
                            rs=agent_record.peer_key)
    agent2.read_message(phone2.write_message())
    phone2.read_message(agent2.write_message())
    assert agent2.transport().decrypt(phone2.transport().encrypt(b"page")) == b"page"


def test_server_that_swaps_the_agent_key_cannot_pair() -> None:
    agent_id, mallory = generate_identity(), generate_identity()
    secret = new_secret()
    # The server cannot alter the fragment of a QR code, but suppose the link reached the phone
    # some other way with a substituted key: the handshake must fail, not pair with Mallory.
    phone = HandshakeState("NKpsk0", initiator=True, prologue=PAIRING_PROLOGUE,
                           psk=kdf.pairing_psk(secret), rs=public_bytes(mallory))
    agent = HandshakeState("NKpsk0", initiator=False, prologue=PAIRING_PROLOGUE,
                           psk=kdf.pairing_psk(secret), s=agent_id)
    with pytest.raises(NoiseError) as info:
        agent.read_message(phone.write_message())
    assert info.value.code == "interception"
    # Mallory, who has the key the phone used but not the QR secret, cannot read it either.
    phone = HandshakeState("NKpsk0", initiator=True, prologue=PAIRING_PROLOGUE,
                           psk=kdf.pairing_psk(secret), rs=public_bytes(mallory))
    impostor = HandshakeState("NKpsk0", initiator=False, prologue=PAIRING_PROLOGUE,
                              psk=kdf.pairing_psk(new_secret()), s=mallory)
    with pytest.raises(NoiseError):
        impostor.read_message(phone.write_message())
