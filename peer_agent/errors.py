"""Errors of the peer agent. Each has a stable code and a sentence for people.

Local faults (something on this device) and remote faults (the server or the other device did
something wrong, or is gone) are kept apart with ``remote``, as h11 does.
"""

from __future__ import annotations

from signaling.schema import ErrorCode


class PeerbeamError(Exception):
    """Something went wrong."""

    code: ErrorCode = ErrorCode.INTERNAL
    remote: bool = False

    def __init__(self, message: str | None = None, *, code: ErrorCode | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        if code is not None:
            self.code = code
        super().__init__(self.message)


class InterceptionError(PeerbeamError):
    """The secure handshake failed: the connection may have been intercepted. Nothing was sent.
    Pair again with a fresh QR code, on a network you trust."""

    code = ErrorCode.INTERCEPTION
    remote = True


class PairingRejected(PeerbeamError):
    """The other device declined the pairing."""

    code = ErrorCode.PAIRING_REJECTED
    remote = True


class UnknownDevice(PeerbeamError):
    """No paired device has that name. `peerbeam devices` lists them."""

    code = ErrorCode.UNKNOWN_DEVICE


class ConnectTimeout(PeerbeamError):
    """No network path to the other device worked in time."""

    code = ErrorCode.CONNECT_TIMEOUT
    remote = True


class ServerUnreachable(PeerbeamError):
    """The signaling server cannot be reached. Check the address and that it is running."""

    code = ErrorCode.SERVER_UNREACHABLE
    remote = True


class PeerGone(PeerbeamError):
    """The other device went away."""

    code = ErrorCode.PEER_GONE
    remote = True


class ServerRefused(PeerbeamError):
    """The signaling server refused the request."""

    remote = True
