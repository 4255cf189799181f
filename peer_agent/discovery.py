"""LAN discovery, the pure part: what the agent's mDNS service says, and how a peer reads it.

The agent advertises ``_peerbeam._tcp.local.`` (DNS-SD, RFC 6763, over mDNS, RFC 6762). Its TXT
record (RFC 6763 §6) carries a protocol version and rotating tags, nothing else::

    "v=1"  "t0=<16 hex>"  "t1=<16 hex>"  ...  "t15=<16 hex>"

A tag is ``lan_tag(pair_secret, epoch)`` (crypto/kdf.py: HMAC over "lan" and the 10-minute
epoch, cut to 8 bytes). A paired peer, which knows the pair secret, recognises its agent; a
stranger sees 16 random-looking values that all change every epoch. The record always holds
exactly MAX_TAGS tags: the real ones for the MAX_TAGS most recently seen pairings, then *decoys*
keyed by a secret the agent draws at start, so that the number of pairings does not show either.
Tags are sorted, so their order says nothing about which pairing is which.

The instance and host names are random per agent start (``new_names``): the IP and MAC address
of the machine are as stable as one run of the agent, so a name rotating with the epoch would
hide nothing from a LAN observer, and it would cost a goodbye and a new probe every ten minutes
(paired peers would see the agent vanish and come back). What must not survive a restart or a
change of network is anything that links the agent to its owner: no host name, no user name, no
key, no pairing count.

mDNS is only a hint (DESIGN "Reconnect"): the KK handshake authenticates whoever answers. Every
TXT record read from the network is hostile, so decoding is bounded (size, number of strings)
and strict about the keys it uses (bad hex is refused), and ignores keys it does not know
(RFC 6763 §6.4), so that a later version may add some.

Everything here is pure: time comes in as ``now`` and randomness as arguments.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from crypto.kdf import LAN_TAG_LEN, derive_key, lan_epoch_of, lan_tag
from crypto.records import PairingRecord
from signaling.schema import ErrorCode

from .errors import PeerbeamError

SERVICE_TYPE: Final = "_peerbeam._tcp.local."
ADVERT_VERSION: Final = 1
MAX_TAGS: Final = 16
# RFC 6763 §6.2: under 1300 bytes a TXT record still fits one Ethernet frame. Ours is ~340.
MAX_TXT_BYTES: Final = 1300
MAX_TXT_STRINGS: Final = 32  # "v", 16 tags, and room for keys a later version may add
NAME_NONCE_BYTES: Final = 8
# Tags of the previous and of the next epoch are accepted too: the advertiser's clock and ours
# may differ by up to one epoch either way, and a browser keeps the last TXT it saw.
MATCH_EPOCH_OFFSETS: Final = (-1, 0, 1)

_TAG_KEY = re.compile(r"t(0|[1-9][0-9]?)")  # t0 .. t99; only t0 .. t15 are tag slots
_VERSION_VALUE = re.compile(r"[0-9]{1,3}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class BadLanAdvert(PeerbeamError):
    """A device on the local network announced a peerbeam service that is not valid."""

    code = ErrorCode.BAD_MESSAGE
    remote = True


@dataclass(frozen=True, slots=True)
class LanAdvert:
    """What one TXT record says. ``tags`` is empty for a version we cannot read."""

    version: int
    tags: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class ServiceNames:
    """The DNS-SD instance name and the SRV target host of one agent run."""

    instance: str  # full service name, "<label>._peerbeam._tcp.local."
    host: str  # "<label>.local."


@dataclass(frozen=True, slots=True)
class NetInterface:
    """One network interface as the operating system reports it (addresses without scope).

    ``multicast_up``: up, running (carrier), multicast-capable and not loopback. Point-to-point
    VPN tunnels (WireGuard, most tun devices) lack the multicast flag, and a bridge with nothing
    plugged in is not running: mDNS there would reach nobody, or the wrong network.
    """

    name: str
    index: int
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    multicast_up: bool = True


def new_names(nonce: bytes) -> ServiceNames:
    """Names made of `nonce` only (random per agent start; see the module docstring)."""
    if len(nonce) != NAME_NONCE_BYTES:
        raise ValueError(f"the name nonce is {NAME_NONCE_BYTES} bytes")
    label = f"peerbeam-{nonce.hex()}"
    return ServiceNames(f"{label}.{SERVICE_TYPE}", f"{label}.local.")


# -- advertising -------------------------------------------------------------------------------


def advert_tags(records: Iterable[PairingRecord], now: float, decoy_key: bytes) -> list[bytes]:
    """Exactly MAX_TAGS sorted tags for the epoch of `now`: the pairings seen most recently
    first, decoys derived from `decoy_key` and the epoch for the rest."""
    epoch = lan_epoch_of(now)
    recent = sorted(records, key=lambda r: r.last_seen, reverse=True)[:MAX_TAGS]
    tags = {lan_tag(r.pair_secret, epoch) for r in recent}
    # Decoys rotate with the epoch like real tags, so none of them is a stable identifier.
    # A decoy equal to a real tag (p = 2^-64) is skipped; the loop bound is never reached.
    context = epoch.to_bytes(8, "big")
    for i in range(4 * MAX_TAGS):
        if len(tags) >= MAX_TAGS:
            break
        tags.add(derive_key(decoy_key, "lan decoy", LAN_TAG_LEN, context=context + bytes([i])))
    return sorted(tags)


def encode_txt(tags: Sequence[bytes], version: int = ADVERT_VERSION) -> bytes:
    """The TXT RDATA (RFC 6763 §6.1: length-prefixed strings) for `tags`."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    strings = [f"v={version}".encode()]
    for i, tag in enumerate(tags):
        if len(tag) != LAN_TAG_LEN:
            raise ValueError(f"a tag is {LAN_TAG_LEN} bytes")
        strings.append(f"t{i}={tag.hex()}".encode())
    return b"".join(bytes([len(s)]) + s for s in strings)


# -- reading what others advertise -------------------------------------------------------------


def _txt_strings(text: bytes) -> list[bytes]:
    if len(text) > MAX_TXT_BYTES:
        raise BadLanAdvert(f"A peerbeam service on the network has a TXT record over {MAX_TXT_BYTES} bytes.")
    strings: list[bytes] = []
    pos = 0
    while pos < len(text):
        length = text[pos]
        if pos + 1 + length > len(text):
            raise BadLanAdvert("A peerbeam service on the network has a truncated TXT record.")
        strings.append(text[pos + 1:pos + 1 + length])
        pos += 1 + length
        if len(strings) > MAX_TXT_STRINGS:
            raise BadLanAdvert("A peerbeam service on the network has too many TXT strings.")
    return strings


def _key_values(strings: Iterable[bytes]) -> dict[str, bytes | None]:
    pairs: dict[str, bytes | None] = {}
    for item in strings:
        raw_key, sep, value = item.partition(b"=")
        # RFC 6763 §6.4: keys are printable US-ASCII without "=", compared case-insensitively;
        # a string with an empty key is ignored, and only the first occurrence of a key counts.
        if not raw_key or any(b < 0x20 or b > 0x7E for b in raw_key):
            continue
        key = raw_key.decode("ascii").lower()
        if key not in pairs:
            pairs[key] = value if sep else None  # no "=": a boolean attribute (§6.4)
    return pairs


def _tag_value(key: str, value: bytes | None) -> bytes:
    text = value.decode("ascii", "replace") if value is not None else ""
    if len(text) != 2 * LAN_TAG_LEN or not _HEX_DIGITS.issuperset(text):
        raise BadLanAdvert(f"A peerbeam service on the network has a malformed tag ({key}).")
    return bytes.fromhex(text)


def decode_txt(text: bytes) -> LanAdvert:
    """Read a TXT RDATA from the network; anything malformed raises ``BadLanAdvert``.

    A version other than ours is returned with no tags: its tags may mean something else.
    """
    pairs = _key_values(_txt_strings(text))
    version_raw = pairs.get("v")
    version_text = version_raw.decode("ascii", "replace") if version_raw is not None else ""
    if not _VERSION_VALUE.fullmatch(version_text):
        raise BadLanAdvert("A peerbeam service on the network has no valid version.")
    version = int(version_text)
    if version != ADVERT_VERSION:
        return LanAdvert(version, frozenset())
    tags: set[bytes] = set()
    for key, value in pairs.items():
        m = _TAG_KEY.fullmatch(key)
        if m is not None and int(m.group(1)) < MAX_TAGS:
            tags.add(_tag_value(key, value))
    return LanAdvert(version, frozenset(tags))


def tag_table(records: Iterable[PairingRecord], now: float) -> dict[bytes, PairingRecord]:
    """Every tag a paired agent may show at `now` (MATCH_EPOCH_OFFSETS), to its record."""
    epoch = lan_epoch_of(now)
    table: dict[bytes, PairingRecord] = {}
    for record in records:
        for offset in MATCH_EPOCH_OFFSETS:
            if epoch + offset >= 0:
                table.setdefault(lan_tag(record.pair_secret, epoch + offset), record)
    return table


def match_advert(advert: LanAdvert, table: dict[bytes, PairingRecord]) -> PairingRecord | None:
    """The pairing whose agent published `advert`, or None (a stranger's or another agent's)."""
    # A plain lookup: the match happens on this device, and all a stranger can observe is
    # whether we then connect, which it would see whatever the comparison took.
    for tag in sorted(advert.tags):
        record = table.get(tag)
        if record is not None:
            return record
    return None


# -- interfaces --------------------------------------------------------------------------------


def _usable(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast)


def lan_interfaces(interfaces: Iterable[NetInterface],
                   only: Collection[str] | None = None) -> list[NetInterface]:
    """The interfaces to speak mDNS on: every multicast-capable one that is up and has a
    non-loopback address, or only those named in `only`. Loopback is left out: an mDNS answer
    there reaches no other device."""
    chosen = []
    for iface in interfaces:
        if not iface.multicast_up or (only is not None and iface.name not in only):
            continue
        ipv4 = tuple(a for a in iface.ipv4 if _usable(a))
        ipv6 = tuple(a for a in iface.ipv6 if _usable(a))
        if ipv4 or ipv6:
            chosen.append(NetInterface(iface.name, iface.index, ipv4, ipv6))
    return chosen


def zeroconf_interfaces(chosen: Iterable[NetInterface]) -> list[str | int]:
    """python-zeroconf's form: IPv4 interfaces by address, IPv6 ones by index (IPV6_JOIN_GROUP
    takes an interface index, RFC 3493 §5.2)."""
    result: list[str | int] = []
    for iface in chosen:
        result.extend(iface.ipv4[:1])
        if iface.ipv6:
            result.append(iface.index)
    return result


def advertised_addresses(chosen: Iterable[NetInterface]) -> list[str]:
    """The A and AAAA records: IPv4 first (what a peer should try first), then IPv6."""
    chosen = list(chosen)
    return [a for i in chosen for a in i.ipv4] + [a for i in chosen for a in i.ipv6]
