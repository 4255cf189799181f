"""The two transfer state machines driven against each other in memory, with the real file layer.

Every control message goes through the real JSON codec (encode → decode_channel) and every
data frame through the real frame codec, so these runs exercise the wire as well. ``Pair`` is
the shape of the shell the session will have: the receiver's events drive a ``PartFile``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from peer_agent.downloads import DownloadError, PartFile
from peer_agent.frames import MAX_PAYLOAD_BYTES, decode_frame, encode_frame
from peer_agent.progress import RateMeter
from peer_agent.transfer import (
    ChunkReceived,
    FrameRefused,
    IncomingTransfer,
    OutgoingTransfer,
    ProgressUpdated,
    TransferAccepted,
    TransferCancelled,
    TransferCompleted,
    TransferFailed,
    TransferInterrupted,
    TransferOffered,
    Transfers,
    TransferState,
    TransferVerified,
)
from signaling.schema import (
    ErrorCode,
    TransferAccept,
    TransferDone,
    TransferOffer,
    TransferProgress,
    decode_channel,
    encode,
)

TID = "0123456789abcdef"


class Pair:
    def __init__(self, folder: Path, data: bytes, *, size: int | None = None, sha256: str | None = None,
                 name: str = "photo.jpg", clock: float = 0.0) -> None:
        self.folder = folder
        self.data = data
        self.clock = clock
        self.sender = OutgoingTransfer(transfer_id=TID, name=name, size=len(data) if size is None else size,
                                       sha256=sha256 or hashlib.sha256(data).hexdigest(), now=clock)
        self.send_table = Transfers()
        self.send_table.add(self.sender)
        self.recv_table = Transfers()
        self.incoming: IncomingTransfer | None = None
        self.part: PartFile | None = None
        self.saved: Path | None = None
        self.sender_events: list = []
        self.receiver_events: list = []
        self.first_frame_offset: int | None = None

    # -- receiver shell -------------------------------------------------------------------------
    def on_receiver(self, events) -> None:
        for event in events:
            self.receiver_events.append(event)
            if isinstance(event, TransferOffered):
                self.part = PartFile.open(self.folder, event.offer)
                self.incoming = IncomingTransfer(event.offer, now=self.clock, resume_offset=self.part.offset,
                                                 resume_digest=self.part.prefix_digest())
                self.recv_table.add(self.incoming)
                self.on_receiver(self.incoming.accept(self.clock))
            elif isinstance(event, ChunkReceived):
                try:
                    self.part.write(event.offset, event.data)
                except DownloadError as exc:
                    self.on_receiver(self.incoming.fail(exc.code, exc.message, self.clock))
            elif isinstance(event, TransferVerified):
                self.saved = self.part.commit()
                self.on_receiver(self.incoming.committed(self.clock))
            elif isinstance(event, (TransferCancelled, TransferFailed)):
                self.part.discard()
            elif isinstance(event, TransferInterrupted):
                self.part.close()

    # -- the wire ---------------------------------------------------------------------------------
    def to_receiver(self) -> int:
        messages = self.send_table.pop_messages()
        for message in messages:
            self.on_receiver(self.recv_table.receive_message(decode_channel(encode(message)), self.clock))
        return len(messages)

    def to_sender(self) -> int:
        messages = self.recv_table.pop_messages()
        for message in messages:
            self.sender_events += self.send_table.receive_message(decode_channel(encode(message)), self.clock)
        return len(messages)

    def frame(self, data: bytes) -> None:
        self.on_receiver(self.recv_table.receive_frame(data, self.clock))

    def send_frames(self, limit: int | None = None) -> int:
        count = 0
        while (want := self.sender.next_read()) is not None and (limit is None or count < limit):
            offset, length = want
            if self.first_frame_offset is None:
                self.first_frame_offset = offset
            self.clock += 0.01
            self.frame(self.sender.encode_chunk(self.data[offset:offset + length], self.clock))
            count += 1
        return count

    def run(self, frames_per_turn: int = 4) -> None:
        for _ in range(10_000):  # bounded: a stuck protocol fails the test instead of hanging
            moved = self.to_receiver() + self.send_frames(frames_per_turn) + self.to_sender()
            if not moved:
                return
        raise AssertionError("the transfer did not settle")

    def visible_files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if not p.name.startswith("."))


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "Downloads"
    path.mkdir()
    return path


def test_full_transfer(folder):
    data = os.urandom(5 * MAX_PAYLOAD_BYTES + 1234)  # several full chunks and a short last one
    pair = Pair(folder, data)
    pair.run()
    assert pair.saved == folder / "photo.jpg" and pair.saved.read_bytes() == data
    assert pair.visible_files() == ["photo.jpg"]  # no .part left
    assert pair.sender.state is TransferState.COMPLETED and pair.incoming.state is TransferState.COMPLETED
    assert pair.sender_events[0] == TransferAccepted(TID, 0) and isinstance(pair.sender_events[-1], TransferCompleted)
    assert kinds(pair.receiver_events).count("ChunkReceived") == 6
    updates = [e.progress for e in pair.sender_events if isinstance(e, ProgressUpdated)]
    assert updates and updates[-1].done == len(data) and updates[-1].eta == 0
    assert all(u.rate is None or u.rate > 0 for u in updates)
    assert not pair.recv_table.get(TID) and not pair.send_table.get(TID)  # finished ones are dropped


def test_empty_file(folder):
    pair = Pair(folder, b"")
    pair.run()
    assert pair.saved.read_bytes() == b"" and pair.sender.state is TransferState.COMPLETED


def test_sender_cancels_midway(folder):
    data = os.urandom(10 * MAX_PAYLOAD_BYTES)
    pair = Pair(folder, data)
    pair.to_receiver()
    pair.to_sender()
    pair.send_frames(3)
    assert pair.visible_files() == ["photo.jpg.part"]
    events = pair.sender.cancel("Stopped by the user.", pair.clock)
    assert events == [TransferCancelled(TID, "local", "Stopped by the user.")]
    assert pair.sender.next_read() is None
    pair.to_receiver()
    assert TransferCancelled(TID, "peer", "Stopped by the user.") in pair.receiver_events
    assert pair.visible_files() == [] and list((folder / ".peerbeam").iterdir()) == []
    # A frame that was already in flight is refused, not written.
    late = encode_frame(TID, 3 * MAX_PAYLOAD_BYTES, data[:100])
    pair.frame(late)
    assert isinstance(pair.receiver_events[-1], FrameRefused) and pair.visible_files() == []


def test_receiver_cancels_midway(folder):
    data = os.urandom(10 * MAX_PAYLOAD_BYTES)
    pair = Pair(folder, data)
    pair.to_receiver()
    pair.to_sender()
    pair.send_frames(2)
    pair.on_receiver(pair.incoming.cancel("Not now.", pair.clock))
    assert pair.visible_files() == []
    pair.to_sender()
    assert TransferCancelled(TID, "peer", "Not now.") in pair.sender_events
    assert pair.sender.state is TransferState.CANCELLED and pair.sender.next_read() is None


def test_sender_lying_about_the_hash(folder):
    data = os.urandom(3 * MAX_PAYLOAD_BYTES)
    pair = Pair(folder, data, sha256=hashlib.sha256(b"something else").hexdigest())
    pair.run()
    failed = [e for e in pair.receiver_events if isinstance(e, TransferFailed)]
    assert failed == [TransferFailed(TID, "local", ErrorCode.HASH_MISMATCH, failed[0].message)]
    assert pair.sender_events[-1].code == ErrorCode.HASH_MISMATCH and pair.sender_events[-1].by == "peer"
    assert pair.saved is None and pair.visible_files() == []


def test_sender_lying_about_the_size(folder):
    data = os.urandom(2000)
    pair = Pair(folder, data, size=1000)  # offers 1000 bytes, then sends 2000
    pair.to_receiver()
    pair.to_sender()
    pair.frame(encode_frame(TID, 0, data))
    failed = pair.receiver_events[-1]
    assert isinstance(failed, TransferFailed) and failed.code == ErrorCode.BAD_FRAME
    pair.to_sender()
    assert pair.sender.state is TransferState.FAILED
    assert pair.visible_files() == [] and pair.saved is None


def test_frame_out_of_order(folder):
    data = os.urandom(4 * MAX_PAYLOAD_BYTES)
    pair = Pair(folder, data)
    pair.to_receiver()
    pair.to_sender()
    pair.frame(encode_frame(TID, MAX_PAYLOAD_BYTES, data[MAX_PAYLOAD_BYTES:2 * MAX_PAYLOAD_BYTES]))  # skips one
    assert pair.receiver_events[-1].code == ErrorCode.BAD_FRAME and pair.visible_files() == []


def test_frame_for_an_unknown_id_or_not_a_frame():
    table = Transfers()
    assert table.receive_frame(encode_frame(TID, 0, b"x"), 0.0) == [
        FrameRefused(TID, ErrorCode.UNKNOWN_TRANSFER, "A data frame for no live transfer.")]
    assert table.receive_frame(b'{"t":"ping"}', 0.0)[0].code == ErrorCode.BAD_FRAME


def test_frame_before_accept_is_a_violation():
    offer = TransferOffer(id=TID, name="x", size=3, sha256="0" * 64)
    incoming = IncomingTransfer(offer, now=0.0)
    events = incoming.receive_frame(decode_frame(encode_frame(TID, 0, b"abc")), 0.0)
    assert events[0].code == ErrorCode.BAD_FRAME and incoming.pop_messages()[0].code == ErrorCode.BAD_FRAME


def test_resume_after_the_sender_drops(folder):
    data = os.urandom(20 * MAX_PAYLOAD_BYTES + 77)
    first = Pair(folder, data)
    first.to_receiver()
    first.to_sender()
    first.send_frames(7)
    # The sender's process dies: no message, the channel just goes away.
    first.on_receiver(first.recv_table.interrupt_all(first.clock))
    assert first.visible_files() == ["photo.jpg.part"]
    assert (folder / "photo.jpg.part").stat().st_size == 7 * MAX_PAYLOAD_BYTES

    # A new process, a new channel, the same file offered again under the same id.
    second = Pair(folder, data, clock=100.0)
    second.run()
    assert second.sender_events[0] == TransferAccepted(TID, 7 * MAX_PAYLOAD_BYTES)
    assert second.first_frame_offset == 7 * MAX_PAYLOAD_BYTES  # nothing sent twice
    assert second.saved == folder / "photo.jpg" and second.saved.read_bytes() == data
    assert second.visible_files() == ["photo.jpg"]
    # The resumed prefix is not counted as speed.
    assert all(e.progress.rate < 10 * len(data) for e in second.sender_events
               if isinstance(e, ProgressUpdated) and e.progress.rate)


def test_resume_over_a_damaged_prefix_fails_cleanly(folder):
    data = os.urandom(6 * MAX_PAYLOAD_BYTES)
    first = Pair(folder, data)
    first.to_receiver()
    first.to_sender()
    first.send_frames(3)
    first.on_receiver(first.recv_table.interrupt_all(first.clock))
    with open(folder / "photo.jpg.part", "r+b") as part:
        part.write(b"\x00" * 10)  # bit rot, or another program, while we were away
    second = Pair(folder, data)
    second.run()
    assert second.sender_events[-1].code == ErrorCode.HASH_MISMATCH and second.visible_files() == []


def test_disk_full_tells_the_sender(tiny_disk):
    """A real 1 MiB tmpfs fills up under a 2 MiB transfer."""
    pair = Pair(tiny_disk, os.urandom(2 * 1024 * 1024))
    pair.run()
    assert pair.sender.state is TransferState.FAILED
    assert pair.sender_events[-1] == TransferFailed(TID, "peer", ErrorCode.DISK_FULL, pair.sender_events[-1].message)
    assert pair.visible_files() == [] and list((tiny_disk / ".peerbeam").iterdir()) == []


def test_protocol_violations_fail_the_transfer():
    sender = OutgoingTransfer(transfer_id=TID, name="a", size=10, sha256="0" * 64, now=0.0)
    sender.pop_messages()
    events = sender.receive(TransferDone(id=TID), 1.0)  # done before any accept
    assert events[0].code == ErrorCode.BAD_MESSAGE and events[0].by == "local"
    assert sender.pop_messages()[0].code == ErrorCode.BAD_MESSAGE  # and the peer is told

    sender = OutgoingTransfer(transfer_id=TID, name="a", size=10, sha256="0" * 64, now=0.0)
    assert sender.receive(TransferAccept(id=TID, offset=11), 0.0)[0].code == ErrorCode.BAD_MESSAGE

    sender = OutgoingTransfer(transfer_id=TID, name="a", size=10, sha256="0" * 64, now=0.0)
    sender.receive(TransferAccept(id=TID, offset=0), 0.0)
    sender.encode_chunk(b"x" * 10, 0.1)
    assert sender.state is TransferState.SENT
    assert sender.receive(TransferProgress(id=TID, received=11), 0.2)[0].code == ErrorCode.BAD_MESSAGE


def test_late_messages_after_an_end_are_ignored():
    sender = OutgoingTransfer(transfer_id=TID, name="a", size=10, sha256="0" * 64, now=0.0)
    sender.cancel("stop", 0.0)
    sender.pop_messages()
    assert sender.receive(TransferProgress(id=TID, received=5), 1.0) == []
    assert sender.pop_messages() == []


def test_cancel_is_too_late_once_the_last_byte_left():
    sender = OutgoingTransfer(transfer_id=TID, name="a", size=3, sha256="0" * 64, now=0.0)
    sender.receive(TransferAccept(id=TID, offset=0), 0.0)
    sender.encode_chunk(b"abc", 0.0)
    assert sender.cancel("stop", 0.0) == [] and sender.state is TransferState.SENT


def test_rate_meter_window_and_eta():
    meter = RateMeter(size=1000, done=100, now=0.0, window=2.0)  # 100 bytes resumed
    assert meter.progress(0.0).rate is None and meter.progress(0.0).eta is None
    for second in range(1, 6):
        meter.update(100 + 100 * second, float(second))
    progress = meter.progress(5.0)
    assert progress.done == 600 and progress.rate == pytest.approx(100.0) and progress.eta == pytest.approx(4.0)
    meter.update(900, 6.0)  # a burst: the window follows it, a lifetime average would not
    assert meter.progress(6.0).rate == pytest.approx((900 - 500) / 2.0)
    assert progress.fraction == pytest.approx(0.6)
