"""Pairing records (DESIGN "Pairing" step 6) and their versioned JSON encoding.

A record is what a device keeps about one paired peer: enough to find it again (rendezvous id,
LAN tag) and to authenticate it (its static key and the pair secret that keys the KKpsk0 psk).
Storage (a 0600 file, IndexedDB) belongs to the callers; this module only encodes.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from .errors import CryptoError

RECORDS_VERSION: Final = 1

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
PeerName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RecordError(CryptoError):
    """The saved pairings could not be read: pair the devices again."""

    code = "bad_records"


class PairingRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    peer_name: PeerName
    peer_key: Key32  # the peer's long-term X25519 public key
    pair_secret: Key32
    # Our role in the Noise handshakes; the joining device is always the initiator, so both
    # sides keep the same roles for KKpsk0 as they had for NKpsk0.
    role: Literal["initiator", "responder"]
    server: str  # signaling origin used to pair, "" if none (LAN only)
    paired_at: float
    last_seen: float
    # Set when this side removed the pairing while the other device was away: the record is
    # kept (as a tombstone) only to tell that device "removed" when it next reconnects.
    removed_at: float | None = None


class _RecordsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: Literal[1]
    records: list[PairingRecord]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_RecordsFile)


def encode_records(records: list[PairingRecord]) -> bytes:
    data = _encoder.encode(_RecordsFile(v=RECORDS_VERSION, records=list(records)))
    # Struct constructors do not check Meta constraints; decoding does. Check before anything
    # is written, so that we never save a file we would refuse to read back.
    try:
        _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid pairing record: {exc}") from None
    return data


def decode_records(data: bytes) -> list[PairingRecord]:
    try:
        return _decoder.decode(data).records
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise RecordError() from exc
