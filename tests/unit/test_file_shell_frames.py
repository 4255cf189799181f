"""FileShell's frame intake, in one process: frames say which path carried them, and frames of a
transfer that just ended (still in flight on the fast path when the cancel went out on the
channel) are taken quietly instead of counting as junk against the sender's message budget.

The channel is stood in for by a recorder of the control messages the shell sends: everything
else (the transfer machines, the .part file, its writer thread) is the real thing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

from peer_agent.config import NodeConfig
from peer_agent.files import FileShell
from peer_agent.frames import encode_frame
from signaling.schema import ChannelMessage, TransferAccept, TransferCancel, TransferOffer

TID = "0011223344556677"


class Recorder:
    """What FileShell needs of a channel: somewhere to send control messages."""

    label = "data channel"
    max_frame_bytes = 64 * 1024

    def __init__(self) -> None:
        self.sent: list[ChannelMessage] = []
        self.changed = asyncio.Event()

    def send(self, message: ChannelMessage) -> None:
        self.sent.append(message)
        self.changed.set()

    async def wait_for(self, kind: type) -> Any:
        while True:
            for message in self.sent:
                if isinstance(message, kind):
                    return message
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def emit(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))
        self.changed.set()

    async def wait_for(self, name: str) -> dict[str, Any]:
        while True:
            for event, fields in self.seen:
                if event == name:
                    return fields
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


async def accept_yes(name: str, offer: TransferOffer, offset: int) -> bool:
    return True


async def test_late_frames_of_an_ended_transfer_are_quiet_and_junk_is_not(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    link, events = Recorder(), Events()
    shell = FileShell(link=link, peer_name="Peer", pair_secret=bytes(32),  # type: ignore[arg-type]
                      config=NodeConfig(home=tmp_path, downloads=tmp_path / "dl", auto_accept=True),
                      reporter=events, decide=accept_yes)
    try:
        shell.on_message(TransferOffer(id=TID, name="a.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest()))
        await link.wait_for(TransferAccept)
        assert shell.on_frame(encode_frame(TID, 0, data[:60_000]), via="LAN fast path") is True
        assert shell.active()[0]["done"] == 60_000
        assert shell.cancel(TID) == [TID]
        assert isinstance(await link.wait_for(TransferCancel), TransferCancel)
        # Frames the sender had already sent arrive after our cancel: quietly dropped.
        assert shell.on_frame(encode_frame(TID, 60_000, data[60_000:120_000]), via="LAN fast path") is True
        assert shell.on_frame(encode_frame(TID, 120_000, data[120_000:180_000]), via="LAN fast path") is True
        # A frame for a transfer that never was, or not a frame at all: the caller counts it.
        assert shell.on_frame(encode_frame("ffffffffffffffff", 0, b"x")) is False
        assert shell.on_frame(b"\x00not a frame at all") is False
    finally:
        await shell.close()
    assert not [p for p in (tmp_path / "dl").iterdir() if not p.name.startswith(".")]


async def test_receiving_events_name_the_path_the_frames_came_by(tmp_path: Path) -> None:
    data = os.urandom(150_000)
    link, events = Recorder(), Events()
    shell = FileShell(link=link, peer_name="Peer", pair_secret=bytes(32),  # type: ignore[arg-type]
                      config=NodeConfig(home=tmp_path, downloads=tmp_path / "dl", auto_accept=True),
                      reporter=events, decide=accept_yes)
    try:
        shell.on_message(TransferOffer(id=TID, name="b.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest()))
        await link.wait_for(TransferAccept)
        for offset in range(0, len(data), 50_000):
            assert shell.on_frame(encode_frame(TID, offset, data[offset:offset + 50_000]), via="LAN fast path")
        received = await events.wait_for("received_file")
    finally:
        await shell.close()
    assert received["via"] == "LAN fast path"
    assert Path(received["path"]).read_bytes() == data
    assert all(f["via"] == "LAN fast path" for e, f in events.seen if e == "progress")
