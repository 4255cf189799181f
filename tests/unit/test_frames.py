"""Binary data frames: exact layout, the 64 KiB cap both ways, and a decoder that only ever says bad_frame."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer_agent.frames import (
    HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    FrameError,
    decode_frame,
    encode_frame,
    new_transfer_id,
)
from signaling.schema import MAX_FILE_BYTES, MAX_FRAME_BYTES, ErrorCode

TID = "0123456789abcdef"


def test_layout_is_the_documented_one():
    frame = encode_frame(TID, 0x0102030405, b"xyz")
    assert frame == b"\xbe\x01" + bytes.fromhex(TID) + bytes.fromhex("0000000102030405") + b"xyz"
    assert HEADER_BYTES == 18


def test_round_trip_at_the_cap():
    payload = bytes(range(256)) * (MAX_PAYLOAD_BYTES // 256) + b"\x00" * (MAX_PAYLOAD_BYTES % 256)
    frame = encode_frame(TID, 7, payload)
    assert len(frame) == MAX_FRAME_BYTES
    decoded = decode_frame(frame)
    assert (decoded.transfer_id, decoded.offset, decoded.payload, decoded.end) == (TID, 7, payload, 7 + len(payload))


@pytest.mark.parametrize("payload", [b"", b"x" * (MAX_PAYLOAD_BYTES + 1)])
def test_encoder_refuses_empty_and_oversized_payloads(payload):
    with pytest.raises(ValueError):
        encode_frame(TID, 0, payload)


def test_encoder_refuses_bad_ids_and_offsets():
    with pytest.raises(ValueError):
        encode_frame("abcd", 0, b"x")
    with pytest.raises(ValueError):
        encode_frame(TID, MAX_FILE_BYTES, b"x")


def _header(magic=0xBE, version=1, offset=0):
    return struct.pack(">BB8sQ", magic, version, bytes.fromhex(TID), offset)


@pytest.mark.parametrize(
    "data,code",
    [
        (b"", ErrorCode.BAD_FRAME),
        (_header()[:10], ErrorCode.BAD_FRAME),
        (_header(), ErrorCode.BAD_FRAME),  # a header and no payload: never useful, refused
        (_header(magic=0x7B) + b"x", ErrorCode.BAD_FRAME),  # '{': JSON sent as binary
        (_header(version=2) + b"x", ErrorCode.BAD_FRAME),
        (_header(offset=MAX_FILE_BYTES) + b"x", ErrorCode.BAD_FRAME),
        (_header(offset=2**64 - 1) + b"x", ErrorCode.BAD_FRAME),
        (_header() + b"x" * (MAX_PAYLOAD_BYTES + 1), ErrorCode.FRAME_TOO_LARGE),
    ],
)
def test_decoder_refuses_with_stable_codes(data, code):
    with pytest.raises(FrameError) as info:
        decode_frame(data)
    assert info.value.code == code and info.value.message and info.value.remote


def test_new_ids_fit_the_header_and_the_schema():
    ids = {new_transfer_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 16 and i == i.lower() and bytes.fromhex(i) for i in ids)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.binary(max_size=100).map(lambda b: b"\xbe\x01" + b),
                 st.binary(min_size=MAX_FRAME_BYTES - 2, max_size=MAX_FRAME_BYTES + 2)))
def test_decode_raises_only_frame_errors(data):
    try:
        frame = decode_frame(data)
    except FrameError:
        return
    assert len(data) <= MAX_FRAME_BYTES and frame.payload and frame.end <= MAX_FILE_BYTES


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=8, max_size=8).map(bytes.hex), st.integers(0, MAX_FILE_BYTES - MAX_PAYLOAD_BYTES),
       st.binary(min_size=1, max_size=2048))
def test_round_trip_property(tid, offset, payload):
    frame = decode_frame(encode_frame(tid, offset, payload))
    assert (frame.transfer_id, frame.offset, frame.payload) == (tid, offset, payload)
