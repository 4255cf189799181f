"""The QR pairing link: shared vectors, round trips, and fuzzing a hostile camera."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import LinkError
from crypto.keys import b64u_encode
from crypto.link import MAX_LINK_CHARS, PairingLink, new_secret, parse_link

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "link.json").read_text())


@pytest.mark.parametrize("case", VECTORS["good"], ids=lambda c: c["origin"])
def test_good_links(case: dict) -> None:
    link = parse_link(case["url"])
    assert link == PairingLink(origin=case["origin"], token=case["token"],
                               secret=bytes.fromhex(case["secret"]),
                               agent_key=bytes.fromhex(case["agent_key"]))
    assert parse_link(link.to_url()) == link


@pytest.mark.parametrize("case", VECTORS["bad"], ids=lambda c: c["why"])
def test_bad_links(case: dict) -> None:
    with pytest.raises(LinkError) as info:
        parse_link(case["url"])
    assert info.value.code == "bad_link"
    assert info.value.message.endswith(".") and "pairing link" in info.value.message


def test_to_url_shape() -> None:
    link = PairingLink("https://beam.example", "AQEtoken", bytes(32), bytes(range(32)))
    assert link.to_url() == (
        f"https://beam.example/p#1.AQEtoken.{b64u_encode(bytes(32))}.{b64u_encode(bytes(range(32)))}"
    )


def test_new_secret_is_random_32_bytes() -> None:
    a, b = new_secret(), new_secret()
    assert len(a) == 32 and a != b


@pytest.mark.parametrize(
    "origin, token, secret, key",
    [
        ("https://beam.example/", "t", bytes(32), bytes(32)),  # origin with a path
        ("ftp://beam.example", "t", bytes(32), bytes(32)),
        ("https://Beam.example", "t", bytes(32), bytes(32)),  # not canonical
        ("https://beam.example", "", bytes(32), bytes(32)),
        ("https://beam.example", "a.b", bytes(32), bytes(32)),
        ("https://beam.example", "t", bytes(31), bytes(32)),
        ("https://beam.example", "t", bytes(32), bytes(33)),
    ],
)
def test_invalid_link_objects_cannot_be_built(origin: str, token: str, secret: bytes,
                                              key: bytes) -> None:
    with pytest.raises((ValueError, LinkError)):
        PairingLink(origin, token, secret, key)


@settings(max_examples=1000)
@given(st.text(max_size=MAX_LINK_CHARS + 50))
def test_fuzz_any_text_only_raises_link_error(text: str) -> None:
    try:
        parse_link(text)
    except LinkError:
        pass


GOOD = VECTORS["good"][0]["url"]


@settings(max_examples=1000)
@given(st.integers(min_value=0, max_value=len(GOOD)), st.integers(min_value=0, max_value=8),
       st.text(st.characters(codec="ascii"), max_size=8))
def test_fuzz_mutated_good_link(position: int, cut: int, insert: str) -> None:
    mutated = GOOD[:position] + insert + GOOD[position + cut :]
    try:
        link = parse_link(mutated)
    except LinkError:
        return
    # Whatever still parses is a well-formed link that round-trips.
    assert parse_link(link.to_url()) == link
    assert len(link.secret) == 32 and len(link.agent_key) == 32
