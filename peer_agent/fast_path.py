"""The LAN fast path: file data frames on the session's direct TCP connection, as Noise
transport messages, instead of the SCTP data channel.

aiortc's data channel tops out near 16–27 MB/s (DESIGN "Facts about this machine"); a TCP
connection on the same LAN goes as fast as the disk and AES-GCM allow. When a session was set up
over a LAN connection (peer_agent/lan_signal.py) — which means both ends are Python peers — the
sender puts its file frames here, each sealed with the session's Noise transport keys
(``SecureSession.seal_frame``: AES-256-GCM, the same nonce sequence as the signals). Control
messages (offer, accept, progress, cancel, done) stay on the data channel, and the receiver feeds
these frames to the same handler as frames from the channel: hash checks, ``.part`` files, resume
and cancel behave exactly the same.

Every frame fits one Noise message: at most 65535 bytes including the 16-byte tag (Noise rev 34
§3), so 65519 bytes of frame, 65501 of them file data after the 18-byte header (frames.py).
"""

from __future__ import annotations

from typing import Final

from crypto.noise import MAX_MESSAGE_LEN, TAGLEN

from .handshake import Kind, SecureSession
from .lan_signal import LanSignal

LABEL: Final = "LAN fast path"
MAX_FAST_FRAME: Final = MAX_MESSAGE_LEN - TAGLEN


class FastPath:
    """Frames out over the LAN connection; the FileShell paces itself with ``wait_writable``."""

    label: Final = LABEL
    max_frame_bytes: Final = MAX_FAST_FRAME

    def __init__(self, secure: SecureSession, signal: LanSignal) -> None:
        self._secure = secure
        self._signal = signal

    def send_frame(self, frame: bytes) -> None:
        if len(frame) > MAX_FAST_FRAME:
            raise ValueError(f"a fast-path frame is at most {MAX_FAST_FRAME} bytes")
        self._signal.write_envelope_of(Kind.FRAME, self._secure.encrypt_frame(frame))

    async def wait_writable(self) -> None:
        await self._signal.drain()
