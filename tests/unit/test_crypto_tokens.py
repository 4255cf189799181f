"""Sealed pairing tokens: shared vectors, tampering, expiry, rotation, fuzzing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import TokenError
from crypto.keys import b64u_decode, b64u_encode
from crypto.tokens import MAX_TOKEN_CHARS, TOKEN_VERSION, TokenClaims, TokenSealer

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "tokens.json").read_text())
NOW = 1_700_000_000.0
ROOM = bytes(range(16))


def vector_sealer() -> TokenSealer:
    keys = {int(kid): bytes.fromhex(key) for kid, key in VECTORS["keys"].items()}
    return TokenSealer(keys, current_kid=VECTORS["current_kid"])


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["token"][:12])
def test_vector_opens_to_claims(case: dict) -> None:
    claims = vector_sealer().open(case["token"], case["now"])
    expected = case["claims"]
    assert claims == TokenClaims(
        version=expected["version"],
        room=bytes.fromhex(expected["room"]),
        token_id=bytes.fromhex(expected["token_id"]),
        expires_at=expected["expires_at"],
    )


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["why"])
def test_vector_rejected_with_code(case: dict) -> None:
    with pytest.raises(TokenError) as info:
        vector_sealer().open(case["token"], case["now"])
    assert info.value.code == case["code"]
    assert info.value.message.endswith(".")


def test_seal_then_open_returns_the_same_claims() -> None:
    sealer = TokenSealer.generate()
    token, claims = sealer.seal(ROOM, NOW)
    assert len(token) <= MAX_TOKEN_CHARS
    assert claims.version == TOKEN_VERSION and claims.room == ROOM
    assert claims.expires_at == pytest.approx(NOW + 120.0)
    assert sealer.open(token, NOW + 119.0) == claims


def test_every_seal_is_fresh() -> None:
    sealer = TokenSealer.generate()
    (t1, c1), (t2, c2) = sealer.seal(ROOM, NOW), sealer.seal(ROOM, NOW)
    assert t1 != t2 and c1.token_id != c2.token_id


def test_expiry_boundary() -> None:
    sealer = TokenSealer.generate(ttl=10.0)
    token, claims = sealer.seal(ROOM, NOW)
    assert sealer.open(token, claims.expires_at - 0.001) == claims
    for later in (claims.expires_at, claims.expires_at + 1):
        with pytest.raises(TokenError) as info:
            sealer.open(token, later)
        assert info.value.code == "token_expired"


def test_flipped_byte_in_every_position_is_bad_token() -> None:
    sealer = TokenSealer.generate()
    token, _ = sealer.seal(ROOM, NOW)
    raw = b64u_decode(token, max_len=MAX_TOKEN_CHARS)
    for position in range(len(raw)):
        for mask in (0x01, 0x80):
            forged = bytearray(raw)
            forged[position] ^= mask
            with pytest.raises(TokenError) as info:
                sealer.open(b64u_encode(bytes(forged)), NOW)
            assert info.value.code == "bad_token", (position, mask)


def test_forgery_is_checked_before_expiry() -> None:
    # An expired *forged* token must not be told apart from any other forgery.
    sealer = TokenSealer.generate()
    token, _ = sealer.seal(ROOM, NOW)
    raw = bytearray(b64u_decode(token, max_len=MAX_TOKEN_CHARS))
    raw[-1] ^= 1
    with pytest.raises(TokenError) as info:
        sealer.open(b64u_encode(bytes(raw)), NOW + 10_000)
    assert info.value.code == "bad_token"


def test_token_from_another_server_is_bad_token() -> None:
    token, _ = TokenSealer.generate().seal(ROOM, NOW)
    with pytest.raises(TokenError) as info:
        TokenSealer.generate().open(token, NOW)
    assert info.value.code == "bad_token"


def test_key_rotation_keeps_old_tokens_until_the_old_key_is_dropped() -> None:
    old, new = bytes(32), bytes(range(32))
    token, claims = TokenSealer({1: old}, current_kid=1).seal(ROOM, NOW)
    rotated = TokenSealer({1: old, 2: new}, current_kid=2)
    assert rotated.open(token, NOW) == claims
    fresh, _ = rotated.seal(ROOM, NOW)
    assert b64u_decode(fresh, max_len=MAX_TOKEN_CHARS)[1] == 2  # sealed under the new kid
    with pytest.raises(TokenError) as info:
        TokenSealer({2: new}, current_kid=2).open(token, NOW)
    assert info.value.code == "bad_token"


def test_padded_or_standard_alphabet_spelling_is_refused() -> None:
    sealer = TokenSealer.generate()
    token, _ = sealer.seal(ROOM, NOW)
    raw = b64u_decode(token, max_len=MAX_TOKEN_CHARS)
    for spelling in (base64.urlsafe_b64encode(raw).decode() + "=", " " + token, token + "\n"):
        if spelling == token:
            continue
        with pytest.raises(TokenError):
            sealer.open(spelling, NOW)


@pytest.mark.parametrize(
    "keys, kid, ttl",
    [({1: bytes(31)}, 1, 120.0), ({1: bytes(32)}, 2, 120.0), ({256: bytes(32)}, 256, 120.0),
     ({-1: bytes(32)}, -1, 120.0), ({1: bytes(32)}, 1, 0.0)],
)
def test_bad_configuration_is_a_local_error(keys: dict[int, bytes], kid: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        TokenSealer(keys, current_kid=kid, ttl=ttl)


def test_room_must_be_16_bytes() -> None:
    with pytest.raises(ValueError):
        TokenSealer.generate().seal(b"short", NOW)


SEALER = TokenSealer({1: bytes(range(32))}, current_kid=1)
VALID_TOKEN, _ = SEALER.seal(ROOM, NOW)


@settings(max_examples=500)
@given(st.text(max_size=400))
def test_fuzz_text_only_raises_token_error(text: str) -> None:
    try:
        SEALER.open(text, NOW)
    except TokenError:
        pass


@settings(max_examples=500)
@given(st.binary(min_size=0, max_size=200))
def test_fuzz_well_encoded_bytes_only_raise_token_error(raw: bytes) -> None:
    with pytest.raises(TokenError):
        SEALER.open(b64u_encode(raw), NOW)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=len(VALID_TOKEN) - 1), st.sampled_from("AQgw_-9z"))
def test_fuzz_character_substitution(position: int, char: str) -> None:
    mutated = VALID_TOKEN[:position] + char + VALID_TOKEN[position + 1 :]
    if mutated == VALID_TOKEN:
        assert SEALER.open(mutated, NOW).room == ROOM
        return
    with pytest.raises(TokenError):
        SEALER.open(mutated, NOW)
