"""Binary data frames: the bytes of a transfer, on the same data channel as the JSON messages.

JSON control messages travel as SCTP *string* messages (PPID 51) and frames as *binary* ones
(PPID 53, RFC 8831 §8), so the receiver tells them apart by type before parsing anything.

A frame is a fixed 18-byte header and a payload::

    0      1        2              10                  18
    +------+--------+--------------+-------------------+-----------------...
    | 0xBE | ver=1  | transfer id  | offset (u64, BE)  | payload
    +------+--------+--------------+-------------------+-----------------...

``offset`` is where the payload starts in the file, so the receiver checks order and resume
point on every frame instead of trusting a running count. Every frame, header included, is at
most 64 KiB: aiortc does not enforce the max-message-size it advertises (RFC 8841 §6), so we
cap what we send and refuse anything bigger we receive.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from typing import Final

from signaling.schema import MAX_FILE_BYTES, MAX_FRAME_BYTES, MAX_THUMB_BYTES, ErrorCode

from .errors import PeerbeamError

MAGIC: Final = 0xBE
VERSION: Final = 1
_HEADER = struct.Struct(">BB8sQ")
HEADER_BYTES: Final = _HEADER.size
MAX_PAYLOAD_BYTES: Final = MAX_FRAME_BYTES - HEADER_BYTES
assert MAX_PAYLOAD_BYTES == MAX_THUMB_BYTES  # a page thumbnail travels as exactly one frame
TRANSFER_ID_BYTES: Final = 8


class FrameError(PeerbeamError):
    """The other device sent a data frame that is not valid."""

    code = ErrorCode.BAD_FRAME
    remote = True


@dataclass(frozen=True, slots=True)
class DataFrame:
    """One chunk of one transfer. ``transfer_id`` is the hex form used in the JSON messages."""

    transfer_id: str
    offset: int
    payload: bytes

    @property
    def end(self) -> int:
        return self.offset + len(self.payload)


def new_transfer_id() -> str:
    return secrets.token_hex(TRANSFER_ID_BYTES)


def encode_frame(transfer_id: str, offset: int, payload: bytes) -> bytes:
    raw_id = bytes.fromhex(transfer_id)
    if len(raw_id) != TRANSFER_ID_BYTES:
        raise ValueError("a transfer id is 8 bytes")
    if not 0 < len(payload) <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"a frame payload is 1..{MAX_PAYLOAD_BYTES} bytes")
    if not 0 <= offset <= MAX_FILE_BYTES - len(payload):
        raise ValueError("offset out of range")
    return _HEADER.pack(MAGIC, VERSION, raw_id, offset) + payload


def decode_frame(data: bytes) -> DataFrame:
    """Parse one binary message; anything malformed raises ``FrameError`` (code ``bad_frame``)."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError("The other device sent a data frame over 64 KiB.", code=ErrorCode.FRAME_TOO_LARGE)
    if len(data) <= HEADER_BYTES:
        raise FrameError("The other device sent a data frame that is too short.")
    magic, version, raw_id, offset = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FrameError("The other device sent binary data that is not a peerbeam frame.")
    if version != VERSION:
        raise FrameError(f"The other device sent a data frame of unknown version {version}.")
    payload = bytes(data[HEADER_BYTES:])
    if offset > MAX_FILE_BYTES - len(payload):
        raise FrameError("The other device sent a data frame beyond the largest file size.")
    return DataFrame(raw_id.hex(), offset, payload)
