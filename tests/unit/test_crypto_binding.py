"""DTLS fingerprint binding: shared vectors, the sender/receiver views, and a relay's swap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto.binding import binding_key, binding_mac, normalise_fingerprint, verify_binding
from crypto.errors import BindingError

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "binding.json").read_text())
KEY = bytes(range(32))
HH = bytes(range(32, 64))


def fp(byte: int) -> str:
    return "sha-256 " + ":".join(f"{byte:02x}" for _ in range(32))


PHONE_FP, AGENT_FP, RELAY_FP = fp(0x11), fp(0x22), fp(0x33)


@pytest.mark.parametrize("case", VECTORS["mac"], ids=lambda c: c["role"])
def test_mac_vectors(case: dict) -> None:
    mac = binding_mac(bytes.fromhex(case["key"]), case["role"],
                      bytes.fromhex(case["handshake_hash"]), case["local_fp"], case["remote_fp"])
    assert mac.hex() == case["mac"]


def test_binding_key_vector() -> None:
    for case in VECTORS["binding_key"]:
        assert binding_key(bytes.fromhex(case["chaining_key"])).hex() == case["key"]


@pytest.mark.parametrize("case", VECTORS["normalise_good"], ids=lambda c: c["input"][:12])
def test_normalise_good(case: dict) -> None:
    assert normalise_fingerprint(case["input"]) == case["output"]


@pytest.mark.parametrize("value", VECTORS["normalise_bad"] + ["A" * 1000])
def test_normalise_bad(value: str) -> None:
    with pytest.raises(BindingError) as info:
        normalise_fingerprint(value)
    assert info.value.code == "interception"


def test_receiver_verifies_with_the_senders_role_and_view() -> None:
    # The phone (initiator) sends a MAC over (its fp, the agent's fp as it saw it).
    mac = binding_mac(KEY, "initiator", HH, local_fp=PHONE_FP, remote_fp=AGENT_FP)
    # The agent checks it: the sender's local fp is the agent's remote fp, and vice versa.
    verify_binding(KEY, "initiator", HH, peer_local_fp=PHONE_FP, peer_remote_fp=AGENT_FP, mac=mac)
    # Fingerprint spellings do not matter once normalised.
    verify_binding(KEY, "initiator", HH, PHONE_FP.upper().replace("SHA-256 ", ""),
                   AGENT_FP.lower(), mac)


def test_swapped_fingerprints_fail() -> None:
    mac = binding_mac(KEY, "initiator", HH, PHONE_FP, AGENT_FP)
    with pytest.raises(BindingError):
        verify_binding(KEY, "initiator", HH, AGENT_FP, PHONE_FP, mac)


def test_relay_terminating_dtls_is_detected() -> None:
    # A relay that answered DTLS with its own certificate: the phone saw RELAY_FP as the
    # agent's, the agent sees RELAY_FP as the phone's. Neither MAC verifies on the other side.
    phone_mac = binding_mac(KEY, "initiator", HH, PHONE_FP, RELAY_FP)
    with pytest.raises(BindingError):
        verify_binding(KEY, "initiator", HH, RELAY_FP, AGENT_FP, phone_mac)
    agent_mac = binding_mac(KEY, "responder", HH, AGENT_FP, RELAY_FP)
    with pytest.raises(BindingError):
        verify_binding(KEY, "responder", HH, RELAY_FP, PHONE_FP, agent_mac)


def test_role_hash_and_key_are_bound() -> None:
    mac = binding_mac(KEY, "initiator", HH, PHONE_FP, AGENT_FP)
    # A MAC reflected back to its sender does not verify as the other role's.
    with pytest.raises(BindingError):
        verify_binding(KEY, "responder", HH, PHONE_FP, AGENT_FP, mac)
    with pytest.raises(BindingError):
        verify_binding(KEY, "initiator", bytes(32), PHONE_FP, AGENT_FP, mac)
    with pytest.raises(BindingError):
        verify_binding(bytes(32), "initiator", HH, PHONE_FP, AGENT_FP, mac)
    with pytest.raises(BindingError):
        verify_binding(KEY, "initiator", HH, PHONE_FP, AGENT_FP, mac[:16])
    with pytest.raises(BindingError):
        verify_binding(KEY, "initiator", HH, PHONE_FP, "sha-1 " + ":".join(["AB"] * 20), mac)


def test_bad_role_is_a_local_error() -> None:
    with pytest.raises(ValueError):
        binding_mac(KEY, "observer", HH, PHONE_FP, AGENT_FP)  # type: ignore[arg-type]
