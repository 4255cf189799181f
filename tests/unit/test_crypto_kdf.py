"""Purpose-bound key derivation: shared vectors and the properties callers rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crypto import kdf

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "kdf.json").read_text())


def h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("case", VECTORS["derive_key"], ids=lambda c: c["purpose"])
def test_derive_key_vectors(case: dict) -> None:
    out = kdf.derive_key(h(case["secret"]), case["purpose"], case["length"], h(case["context"]))
    assert out.hex() == case["output"]


def test_named_derivation_vectors() -> None:
    for case in VECTORS["pairing_psk"]:
        assert kdf.pairing_psk(h(case["qr_secret"])).hex() == case["psk"]
    for case in VECTORS["pair_secret"]:
        assert kdf.pair_secret(h(case["chaining_key"])).hex() == case["pair_secret"]
    for case in VECTORS["reconnect_psk"]:
        assert kdf.reconnect_psk(h(case["pair_secret"])).hex() == case["psk"]
    for case in VECTORS["rendezvous_id"]:
        assert kdf.rendezvous_id(h(case["pair_secret"]), case["day"]).hex() == case["rid"]
    for case in VECTORS["lan_tag"]:
        assert kdf.lan_tag(h(case["pair_secret"]), case["epoch"]).hex() == case["tag"]
    for case in VECTORS["comparison_code"]:
        assert kdf.comparison_code(h(case["handshake_hash"])) == case["code"]
    for case in VECTORS["day_of"]:
        assert kdf.day_of(case["now"]) == case["day"]
    for case in VECTORS["lan_epoch_of"]:
        assert kdf.lan_epoch_of(case["now"]) == case["epoch"]


def test_purposes_separate_keys() -> None:
    secret = bytes(range(32))
    derived = {
        kdf.pairing_psk(secret), kdf.pair_secret(secret), kdf.reconnect_psk(secret),
        kdf.rendezvous_id(secret, 0), kdf.derive_key(secret, "dtls binding"),
    }
    assert len(derived) == 5
    # The NUL after the label keeps ("ab", context "c") apart from ("abc", no context).
    assert kdf.derive_key(secret, "ab", context=b"c") != kdf.derive_key(secret, "abc")


def test_rendezvous_and_lan_tags_rotate() -> None:
    secret = bytes(range(32))
    assert kdf.rendezvous_id(secret, 1) != kdf.rendezvous_id(secret, 2)
    assert len(kdf.rendezvous_id(secret, 1)) == 32
    tags = {kdf.lan_tag(secret, e) for e in range(50)}
    assert len(tags) == 50 and all(len(t) == 8 for t in tags)
    assert kdf.lan_tag(bytes(32), 7) != kdf.lan_tag(secret, 7)


def test_day_and_epoch_boundaries() -> None:
    assert kdf.day_of(86399.999) == 0 and kdf.day_of(86400.0) == 1
    assert kdf.lan_epoch_of(599.999) == 0 and kdf.lan_epoch_of(600.0) == 1


def test_comparison_code_is_six_digits_and_spread() -> None:
    codes = [kdf.comparison_code(i.to_bytes(32, "big")) for i in range(2000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 1990  # ~2 collisions expected among 2000 draws from 10**6
    # Leading digits are spread (a code is not just a small number, zero-padded).
    assert len({c[0] for c in codes}) == 10


@pytest.mark.parametrize(
    "call",
    [
        lambda: kdf.derive_key(b"", "x"),
        lambda: kdf.derive_key(b"k", ""),
        lambda: kdf.derive_key(b"k", "a\x00b"),
        lambda: kdf.derive_key(b"k", "é"),
        lambda: kdf.pairing_psk(bytes(31)),
        lambda: kdf.pair_secret(bytes(33)),
        lambda: kdf.rendezvous_id(bytes(32), -1),
        lambda: kdf.lan_tag(bytes(32), 2**64),
        lambda: kdf.comparison_code(b""),
    ],
)
def test_misuse_is_a_local_error(call: object) -> None:
    with pytest.raises((ValueError, UnicodeEncodeError)):
        call()  # type: ignore[operator]
