"""The pure core of LAN discovery (peer_agent/discovery.py): TXT records, tags, matching,
interface choice. No sockets: mDNS itself is tested in tests/integration/test_lan_discovery.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.kdf import LAN_EPOCH_PERIOD, lan_tag
from crypto.records import PairingRecord
from peer_agent.discovery import (
    MAX_TAGS,
    MAX_TXT_BYTES,
    SERVICE_TYPE,
    BadLanAdvert,
    LanAdvert,
    NetInterface,
    advert_tags,
    advertised_addresses,
    decode_txt,
    encode_txt,
    lan_interfaces,
    match_advert,
    new_names,
    tag_table,
    zeroconf_interfaces,
)

NOW = 1_800_000_000.0
EPOCH = int(NOW // LAN_EPOCH_PERIOD)
DECOY_KEY = bytes(range(32))


def record(n: int, last_seen: float = 0.0) -> PairingRecord:
    return PairingRecord(peer_name=f"peer {n}", peer_key=bytes([n]) * 32,
                         pair_secret=bytes([n, 0xA5]) * 16, role="responder", server="",
                         paired_at=0.0, last_seen=last_seen)


def txt(*strings: bytes) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in strings)


# -- names -------------------------------------------------------------------------------------


def test_names_are_made_of_the_nonce_only() -> None:
    names = new_names(bytes.fromhex("0011223344556677"))
    assert names.instance == "peerbeam-0011223344556677._peerbeam._tcp.local."
    assert names.host == "peerbeam-0011223344556677.local."
    assert names.instance.endswith(SERVICE_TYPE)
    with pytest.raises(ValueError):
        new_names(b"short")


# -- what the agent advertises -----------------------------------------------------------------


def test_tags_are_always_sixteen_and_hold_every_recent_pairing() -> None:
    for count in (0, 1, 3, MAX_TAGS):
        records = [record(n) for n in range(count)]
        tags = advert_tags(records, NOW, DECOY_KEY)
        assert len(tags) == MAX_TAGS and tags == sorted(tags)
        assert {lan_tag(r.pair_secret, EPOCH) for r in records} <= set(tags)


def test_only_the_sixteen_most_recently_seen_pairings_get_a_tag() -> None:
    records = [record(n, last_seen=float(n)) for n in range(MAX_TAGS + 4)]
    tags = set(advert_tags(records, NOW, DECOY_KEY))
    assert tags == {lan_tag(r.pair_secret, EPOCH) for r in records[4:]}


def test_every_tag_changes_at_the_epoch_boundary() -> None:
    records = [record(1), record(2)]
    boundary = (EPOCH + 1) * LAN_EPOCH_PERIOD
    before = advert_tags(records, boundary - 0.001, DECOY_KEY)
    assert advert_tags(records, boundary - LAN_EPOCH_PERIOD, DECOY_KEY) == before
    after = advert_tags(records, boundary, DECOY_KEY)
    assert not set(before) & set(after)  # decoys rotate too: none links two epochs


def test_decoys_depend_on_the_per_start_key() -> None:
    one = advert_tags([record(1)], NOW, DECOY_KEY)
    other = advert_tags([record(1)], NOW, bytes(32))
    assert set(one) & set(other) == {lan_tag(record(1).pair_secret, EPOCH)}


def test_encoded_txt_is_the_documented_format_and_small() -> None:
    tags = advert_tags([record(1)], NOW, DECOY_KEY)
    raw = encode_txt(tags)
    strings = []
    rest = raw
    while rest:
        strings.append(rest[1:1 + rest[0]].decode())
        rest = rest[1 + rest[0]:]
    assert strings[0] == "v=1"
    assert strings[1:] == [f"t{i}={t.hex()}" for i, t in enumerate(tags)]
    # RFC 6763 §6.2: under 400 bytes the record fits a 512-byte DNS message.
    assert len(raw) < 400
    assert decode_txt(raw) == LanAdvert(1, frozenset(tags))


def test_encode_refuses_what_it_could_not_decode() -> None:
    with pytest.raises(ValueError):
        encode_txt([bytes(8)] * (MAX_TAGS + 1))
    with pytest.raises(ValueError):
        encode_txt([bytes(7)])


@given(st.lists(st.binary(min_size=8, max_size=8), max_size=MAX_TAGS))
def test_txt_round_trip(tags: list[bytes]) -> None:
    assert decode_txt(encode_txt(tags)) == LanAdvert(1, frozenset(tags))


# -- reading hostile TXT records ---------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=MAX_TXT_BYTES + 50))
def test_any_bytes_decode_or_raise_bad_lan_advert(raw: bytes) -> None:
    try:
        advert = decode_txt(raw)
    except BadLanAdvert as exc:
        assert exc.remote and exc.code == "bad_message"
    else:
        assert len(advert.tags) <= MAX_TAGS
        assert all(len(t) == 8 for t in advert.tags)


_strings = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"v=1", b"V=1", b"v=2", b"v=", b"v", b"=1", b"t0=" + b"ab" * 8, b"t15=" + b"CD" * 8,
                     b"t16=" + b"ab" * 8, b"t0=zz", b"t3", b"x=y"]),
)


@settings(max_examples=500)
@given(st.lists(_strings, max_size=40))
def test_structured_hostile_txt_never_escapes_the_caps(strings: list[bytes]) -> None:
    try:
        advert = decode_txt(txt(*strings))
    except BadLanAdvert:
        return
    assert advert.version in range(1000) and len(advert.tags) <= MAX_TAGS


@pytest.mark.parametrize("raw, why", [
    (b"\x05v=1", "truncated"),
    (txt(b"t0=" + b"ab" * 8), "no valid version"),
    (txt(b"v=one"), "no valid version"),
    (txt(b"v=1000"), "no valid version"),
    (txt(b"v"), "no valid version"),
    (txt(b"v=1", b"t0=" + b"zz" * 8), "malformed tag"),
    (txt(b"v=1", b"t0=" + b"ab" * 7), "malformed tag"),
    (txt(b"v=1", b"t0=" + b"ab" * 9), "malformed tag"),
    (txt(b"v=1", b"t0"), "malformed tag"),
    (txt(b"v=1", b"t0= " + b"ab" * 8), "malformed tag"),
    (txt(b"v=1", b"t0=" + "é".encode() * 8), "malformed tag"),
    (txt(b"v=1", *[b"x%d=1" % i for i in range(40)]), "too many TXT strings"),
    (txt(b"v=1") + txt(b"x" * 255) * 6, "over 1300 bytes"),
])
def test_malformed_txt_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(BadLanAdvert, match=re.escape(why)):
        decode_txt(raw)


def test_rfc6763_key_rules() -> None:
    tag_a, tag_b = bytes.fromhex("aa" * 8), bytes.fromhex("bb" * 8)
    advert = decode_txt(txt(
        b"V=1",  # keys are case-insensitive (§6.4)
        b"T0=" + tag_a.hex().upper().encode(),  # hex in either case
        b"t0=" + tag_b.hex().encode(),  # a repeated key: only the first counts (§6.4)
        b"=ignored",  # empty key: ignored (§6.4)
        b"t16=" + b"cc" * 8, b"t99=x", b"t01=x",  # not tag slots: unknown keys, ignored
        b"future=1", b"flag",  # unknown keys a later version may add
    ))
    assert advert == LanAdvert(1, frozenset({tag_a}))


def test_another_version_is_listed_without_tags() -> None:
    assert decode_txt(txt(b"v=2", b"t0=whatever-it-means-then")) == LanAdvert(2, frozenset())


# -- recognising one's agent -------------------------------------------------------------------


def test_a_paired_peer_matches_the_previous_current_and_next_epoch() -> None:
    mine, other = record(1), record(2)
    table = tag_table([other, mine], NOW)
    for offset in (-1, 0, 1):
        advert = LanAdvert(1, frozenset(advert_tags([mine], NOW + offset * LAN_EPOCH_PERIOD,
                                                     DECOY_KEY)))
        assert match_advert(advert, table) == mine
    for offset in (-2, 2):
        advert = LanAdvert(1, frozenset(advert_tags([mine], NOW + offset * LAN_EPOCH_PERIOD,
                                                     DECOY_KEY)))
        assert match_advert(advert, table) is None


def test_a_stranger_matches_nothing() -> None:
    advert = LanAdvert(1, frozenset(advert_tags([record(1), record(2)], NOW, DECOY_KEY)))
    assert match_advert(advert, tag_table([record(3)], NOW)) is None
    assert match_advert(advert, tag_table([], NOW)) is None
    assert match_advert(LanAdvert(2, frozenset()), tag_table([record(1)], NOW)) is None


def test_epoch_zero_has_no_previous_epoch() -> None:
    table = tag_table([record(1)], 0.0)
    assert set(table) == {lan_tag(record(1).pair_secret, e) for e in (0, 1)}


# -- interfaces --------------------------------------------------------------------------------

LO = NetInterface("lo", 1, ("127.0.0.1",), ("::1",))
ETH = NetInterface("eth0", 2, ("198.51.100.7",), ("fe80::1", "2001:db8::7"))
WLAN = NetInterface("wlan0", 3, ("203.0.113.9",), ())
V6ONLY = NetInterface("wg0", 4, (), ("fe80::4",))
DOWN = NetInterface("eth1", 5, (), ())
TUNNEL = NetInterface("tun0", 6, ("203.0.113.66",), (), multicast_up=False)


def test_lan_interfaces_leave_out_loopback_tunnels_and_interfaces_without_addresses() -> None:
    assert lan_interfaces([LO, ETH, WLAN, V6ONLY, DOWN, TUNNEL]) == [ETH, WLAN, V6ONLY]
    assert lan_interfaces([TUNNEL], only={"tun0"}) == []
    assert lan_interfaces([LO, ETH, WLAN], only={"wlan0", "lo"}) == [WLAN]
    assert lan_interfaces([LO]) == []


def test_zeroconf_gets_ipv4_by_address_and_ipv6_by_index() -> None:
    assert zeroconf_interfaces([ETH, WLAN, V6ONLY]) == ["198.51.100.7", 2, "203.0.113.9", 4]


def test_advertised_addresses_put_ipv4_first() -> None:
    assert advertised_addresses([ETH, WLAN, V6ONLY]) == [
        "198.51.100.7", "203.0.113.9", "fe80::1", "2001:db8::7", "fe80::4"]
