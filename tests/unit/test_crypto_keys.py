"""Identity keys and the strict base64url codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.keys import (
    b64u_decode, b64u_encode, generate_identity, load_private, private_bytes, public_bytes,
)


def test_identity_round_trip() -> None:
    key = generate_identity()
    raw = private_bytes(key)
    assert len(raw) == 32 and len(public_bytes(key)) == 32
    again = load_private(raw)
    assert public_bytes(again) == public_bytes(key) == public_bytes(key.public_key())
    assert public_bytes(generate_identity()) != public_bytes(key)


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33)])
def test_load_private_wants_32_bytes(raw: bytes) -> None:
    with pytest.raises(ValueError):
        load_private(raw)


@given(st.binary(max_size=100))
def test_b64u_round_trip(raw: bytes) -> None:
    text = b64u_encode(raw)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64u_decode(text, max_len=200) == raw


@pytest.mark.parametrize("text", ["A", "AA==", "AB", "A+8", "A/8", " AA", "AA\n", "ÄA", "AAA="])
def test_b64u_is_strict(text: str) -> None:
    # "AB" decodes to one byte with stray low bits: not the canonical spelling ("AA" would be).
    with pytest.raises(ValueError):
        b64u_decode(text, max_len=10)


def test_b64u_length_cap_applies_before_decoding() -> None:
    with pytest.raises(ValueError):
        b64u_decode("AAAA" * 10, max_len=39)
    assert b64u_decode("AAAA" * 10, max_len=40) == bytes(30)
