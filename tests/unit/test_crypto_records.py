"""Pairing records: versioned JSON round trip and refusal of anything unexpected."""

from __future__ import annotations

import json

import pytest

from crypto.records import PairingRecord, RecordError, decode_records, encode_records


def record(**changes: object) -> PairingRecord:
    fields: dict[str, object] = dict(
        peer_name="Ana's phone", peer_key=bytes(range(32)), pair_secret=bytes(range(32, 64)),
        role="responder", server="https://beam.example", paired_at=1_700_000_000.0,
        last_seen=1_700_000_100.5,
    )
    fields.update(changes)
    return PairingRecord(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    records = [record(), record(peer_name="PC", role="initiator", server="")]
    data = encode_records(records)
    assert json.loads(data)["v"] == 1
    assert decode_records(data) == records
    assert decode_records(encode_records([])) == []


def test_records_are_frozen() -> None:
    with pytest.raises(AttributeError):
        record().peer_name = "x"  # type: ignore[misc]


def wrapped(**changes: object) -> bytes:
    doc = json.loads(encode_records([record()]))
    entry = doc["records"][0]
    for name, value in changes.items():
        if value is None:
            del entry[name]
        else:
            entry[name] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"v": 2, "records": []}',
        b'{"records": []}',
        b'{"v": 1, "records": [], "extra": 1}',
        wrapped(unknown="x"),
        wrapped(role="observer"),
        wrapped(peer_key="AAAA"),  # 3 bytes, not 32
        wrapped(pair_secret=None),
        wrapped(peer_name=""),
        wrapped(paired_at="yesterday"),
    ],
)
def test_bad_files_raise_record_error(data: bytes) -> None:
    with pytest.raises(RecordError) as info:
        decode_records(data)
    assert info.value.code == "bad_records"


@pytest.mark.parametrize(
    "changes", [dict(peer_key=bytes(3)), dict(pair_secret=bytes(33)), dict(peer_name="")]
)
def test_invalid_records_are_never_encoded(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_records([record(**changes)])
