"""Errors of the signaling package: one base class, a stable wire code, a sentence for people.

The sentence is what a device shows its user, so it says what happened and what to do, and it
never echoes what the client sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .schema import Error, ErrorCode

SENTENCES: Final[Mapping[ErrorCode, str]] = {
    ErrorCode.BAD_JSON: "The message is not valid JSON.",
    ErrorCode.BAD_MESSAGE: "The message does not fit the schema.",
    ErrorCode.FRAME_TOO_LARGE: "The message is larger than 64 KiB.",
    ErrorCode.BAD_TOKEN: "This pairing code is not valid.",
    ErrorCode.TOKEN_EXPIRED: "This pairing code has expired: scan the new one.",
    ErrorCode.TOKEN_USED: "This pairing code has already been used: scan the new one.",
    ErrorCode.ROOM_FULL: "Another device is already connected here.",
    ErrorCode.RATE_LIMITED: "Too many requests: wait a minute and try again.",
    ErrorCode.AUTH_TIMEOUT: "Nothing was paired or joined in time: the connection is closed.",
    ErrorCode.NOT_IN_ROOM: "This connection has not paired or joined yet.",
    ErrorCode.ALREADY_BOUND: "This connection is already paired or joined; open a new one.",
    ErrorCode.PEER_GONE: "The other device is not connected.",
    ErrorCode.INTERNAL: "The server failed; try again.",
}


class SignalingError(Exception):
    """A request the server refuses; becomes an ``error`` message on the wire."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        self.code = code
        self.message = (
            message if message is not None else SENTENCES.get(code, SENTENCES[ErrorCode.INTERNAL])
        )
        super().__init__(self.message)

    def to_message(self) -> Error:
        return Error(code=self.code, message=self.message)


class StoreFullError(SignalingError):
    """The used-token ledger is full of live entries: refuse rather than forget one."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, "The server is busy: try again in a minute.")


def error(code: ErrorCode, message: str | None = None) -> Error:
    """The wire ``error`` message for ``code`` with its standard sentence."""
    return SignalingError(code, message).to_message()
