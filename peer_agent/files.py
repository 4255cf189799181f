"""File transfers on one connected channel: the asyncio shell around ``transfer.Transfers``.

The pure machines decide; this shell does what they ask: it reads the sender's file in blocks
(off the event loop), paces frames on the channel's ``bufferedAmountLowThreshold``, writes the
receiver's ``.part`` and commits it in a thread, asks the user about offers, and turns events
into what people see (``progress`` with rate and ETA on both sides, start / abort / stop).

A dropped channel interrupts every transfer: the receiver keeps its ``.part`` and sidecar, the
sender's ``send_file`` raises ``TransferInterrupted``; offering the same file again (same id,
see ``crypto.kdf.transfer_id``) resumes from the receiver's offset.

Frames travel on a ``FrameCarrier``: the data channel itself, or the LAN fast path
(peer_agent/fast_path.py) when the session runs over a direct LAN connection. Control messages
always use the data channel. Every event about bytes moving says which carrier moved them
(``via``), so the user sees whether the fast path is in use.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from crypto.kdf import transfer_id
from signaling.schema import ChannelMessage, ErrorCode, TransferOffer

from .config import NodeConfig
from .downloads import DownloadError, PartFile
from .errors import PeerbeamError
from .frames import HEADER_BYTES
from .progress import Progress
from .report import Reporter
from .rtc import RtcLink
from .transfer import (
    ChunkReceived,
    Event,
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
    TransferRejected,
    Transfers,
    TransferState,
    TransferVerified,
)

logger = logging.getLogger(__name__)

READ_BLOCK = 1024 * 1024  # one thread hop per MiB read; frames are cut from it
PROGRESS_INTERVAL = 0.25
MAX_PENDING_OFFERS = 8
# Ids of transfers that ended lately: frames of theirs still in flight on another path than the
# cancel (the fast path's socket buffers hold a few MB) are dropped quietly, not counted as junk.
RECENT_ENDS = 32
# The receiver's disk writes run on a thread of their own (PartWriter), a batch at a time; at
# most WRITE_BEHIND bytes wait for the disk before the event loop waits too.
WRITE_BATCH = 1024 * 1024
WRITE_BEHIND = 8 * 1024 * 1024
# Every this many bytes the writer asks the kernel to start writing them to disk (below).
WRITEBACK_EVERY = 16 * 1024 * 1024
Listener = Callable[[dict[str, Any]], None]
Decide = Callable[[str, TransferOffer, int], Awaitable[bool]]


class FrameCarrier(Protocol):
    """Where a transfer's data frames go: ``RtcLink`` or ``FastPath``."""

    @property
    def label(self) -> str: ...

    @property
    def max_frame_bytes(self) -> int: ...

    def send_frame(self, frame: bytes) -> None: ...

    async def wait_writable(self) -> None: ...


class TransferError(PeerbeamError):
    """A file transfer ended without the file arriving."""


class TransferStopped(TransferError):
    """Cancelled, rejected or failed: the other side has no copy of the file."""


class TransferBroken(TransferError):
    """The connection dropped during the transfer; offering the file again resumes it."""

    code = ErrorCode.PEER_GONE


@dataclass(frozen=True)
class SendResult:
    id: str
    file: str
    size: int
    sha256: str
    seconds: float
    resumed_from: int
    via: str = RtcLink.label


def file_digest(path: Path) -> str:
    """sha-256 of a file, read in blocks (blocking: run it in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _progress_fields(progress: Progress) -> dict[str, Any]:
    return {"done": progress.done, "size": progress.size,
            "rate": None if progress.rate is None else round(progress.rate),
            "eta": None if progress.eta is None else round(progress.eta, 1)}


class _Sending:
    def __init__(self, path: Path, transfer: OutgoingTransfer, listener: Listener | None) -> None:
        self.path = path
        self.transfer = transfer
        self.listener = listener
        self.accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started = time.monotonic()


class PartWriter:
    """Writes one ``.part`` on a thread of its own, in order.

    ``PartFile.write`` copies into the page cache; on the event loop that is a good part of a
    fast receiver's time. Here it overlaps with reading, decrypting and checking the next frames. The PartFile belongs to this thread until
    ``stop()``: only then may it be closed, discarded or committed. Errors (a full disk) come
    back on the next ``write`` or on ``flush``.

    Every WRITEBACK_EVERY bytes it tells the kernel it will not read them back
    (POSIX_FADV_DONTNEED), which on Linux starts their writeback at once (mm/fadvise.c) and
    drops them from the page cache once clean. The fsync at commit then finds little left to
    write — a second or more saved at the end of a large file — and a big transfer does not
    push everything else out of the cache.
    """

    def __init__(self, part: PartFile) -> None:
        self.part = part
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="peerbeam-part")
        self._batch: list[tuple[int, bytes]] = []
        self._batch_bytes = 0
        self._inflight: collections.deque[tuple[concurrent.futures.Future[None], int]] = collections.deque()
        self._behind = 0
        self._error: DownloadError | None = None  # set on the writer thread, read once its batch is done
        self._stopped = False
        self._advised = part.offset  # writeback asked for up to here (writer thread only)
        self._advice_fd: int | None = None

    def _write_batch(self, batch: list[tuple[int, bytes]]) -> None:
        for offset, data in batch:
            if self._error is not None:
                return
            try:
                self.part.write(offset, data)
            except DownloadError as exc:
                self._error = exc
                return
        end = batch[-1][0] + len(batch[-1][1])
        if end - self._advised >= WRITEBACK_EVERY and hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):  # advice only: nothing depends on it
                if self._advice_fd is None:
                    self._advice_fd = os.open(self.part.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                os.posix_fadvise(self._advice_fd, self._advised, end - self._advised, os.POSIX_FADV_DONTNEED)
            self._advised = end

    def _submit(self) -> None:
        if self._batch:
            future = self._pool.submit(self._write_batch, self._batch)
            self._inflight.append((future, self._batch_bytes))
            self._behind += self._batch_bytes
            self._batch, self._batch_bytes = [], 0

    def _reap(self) -> None:
        while self._inflight and self._inflight[0][0].done():
            future, size = self._inflight.popleft()
            self._behind -= size
            future.result()  # a bug on the thread surfaces here
        if self._error is not None:
            raise self._error

    def write(self, offset: int, data: bytes) -> None:
        if self._stopped:
            raise DownloadError("Internal error: a write after the end.")
        self._reap()
        self._batch.append((offset, data))
        self._batch_bytes += len(data)
        if self._batch_bytes >= WRITE_BATCH:
            self._submit()
        while self._behind > WRITE_BEHIND:
            # The disk is slower than the network: wait for it here (briefly), so that the
            # sender is slowed by flow control instead of this process filling its memory.
            self._inflight[0][0].result()
            self._reap()

    async def flush(self) -> None:
        """Until everything written so far is on its way to the disk; raises its error."""
        self._submit()
        if self._inflight:
            await asyncio.wrap_future(self._inflight[-1][0])  # one thread: the last is done last
        self._reap()

    def stop(self, keep: bool = True) -> None:
        """Finish the writes (``keep``) or drop those not started, and end the thread. Blocks
        for at most the writes under way (WRITE_BEHIND): a transfer is ending anyway."""
        if self._stopped:
            return
        self._stopped = True
        if keep:
            self._submit()
        self._pool.shutdown(wait=True, cancel_futures=not keep)
        self._inflight.clear()
        if self._advice_fd is not None:
            os.close(self._advice_fd)
            self._advice_fd = None


class _Receiving:
    def __init__(self, transfer: IncomingTransfer, part: PartFile) -> None:
        self.transfer = transfer
        self.part = part
        self.writer = PartWriter(part)
        self.started = time.monotonic()
        self.last_data = time.monotonic()
        self.shown_at = 0.0
        self.via: str | None = None  # the carrier of the first frame that arrived


class FileShell:
    def __init__(self, *, link: RtcLink, peer_name: str, pair_secret: bytes, config: NodeConfig,
                 reporter: Reporter, decide: Decide, frames: FrameCarrier | None = None) -> None:
        self.link = link
        self.frames: FrameCarrier = frames if frames is not None else link
        self.peer_name = peer_name
        self._pair_secret = pair_secret
        self.config = config
        self.reporter = reporter
        self._decide = decide
        self.table = Transfers()
        self._sending: dict[str, _Sending] = {}
        self._receiving: dict[str, _Receiving] = {}
        self._considering: set[str] = set()
        self._recent_ends: collections.deque[str] = collections.deque(maxlen=RECENT_ENDS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._watchdog = self._spawn(self._watch_stalls())

    # -- plumbing -------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _flush(self) -> None:
        for message in self.table.pop_messages():
            self._send(message)

    def _send(self, message: ChannelMessage) -> None:
        with contextlib.suppress(PeerbeamError, RuntimeError):
            self.link.send(message)

    def _emit(self, event: str, transfer_id: str, listener: Listener | None = None, **fields: Any) -> None:
        fields = {"name": self.peer_name, "id": transfer_id, **fields}
        self.reporter.emit(event, **fields)
        if listener is not None:
            listener({"event": event, **fields})

    def active(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        rows = []
        for tid, s in self._sending.items():
            rows.append({"id": tid, "direction": "out", "file": s.transfer.offer.name,
                         **_progress_fields(s.transfer.progress(now))})
        for tid, r in self._receiving.items():
            rows.append({"id": tid, "direction": "in", "file": r.transfer.offer.name,
                         **_progress_fields(r.transfer.progress(now))})
        return rows

    # -- inbound ----------------------------------------------------------------------------------

    def on_message(self, message: ChannelMessage) -> None:
        self._handle(self.table.receive_message(message, time.monotonic()))

    def on_frame(self, data: bytes, via: str = RtcLink.label) -> bool:
        """Route one binary frame that came by ``via``; False when it belongs to no live
        transfer (the caller counts those)."""
        events = self.table.receive_frame(data, time.monotonic())
        for event in events:
            if isinstance(event, ChunkReceived):
                receiving = self._receiving.get(event.transfer_id)
                if receiving is not None and receiving.via is None:
                    receiving.via = via
        refused = [e for e in events if isinstance(e, FrameRefused)]
        self._handle(events)
        return not refused or all(e.transfer_id in self._recent_ends for e in refused)

    def _handle(self, events: list[Event]) -> None:
        now = time.monotonic()
        for event in events:
            tid = event.transfer_id
            sending = self._sending.get(tid)
            receiving = self._receiving.get(tid)
            if isinstance(event, TransferOffered):
                self._consider(event.offer)
            elif isinstance(event, ChunkReceived) and receiving is not None:
                receiving.last_data = now
                try:
                    receiving.writer.write(event.offset, event.data)
                except DownloadError as exc:
                    self._handle(receiving.transfer.fail(exc.code, exc.message, now))
                    continue
                if now - receiving.shown_at >= PROGRESS_INTERVAL:
                    receiving.shown_at = now
                    self._emit("progress", tid, direction="in", file=receiving.part.final_name, via=receiving.via,
                               **_progress_fields(receiving.transfer.progress(now)))
            elif isinstance(event, TransferVerified) and receiving is not None:
                self._spawn(self._commit(receiving))
            elif isinstance(event, TransferAccepted) and sending is not None:
                if not sending.accepted.done():
                    sending.accepted.set_result(event.offset)
            elif isinstance(event, ProgressUpdated) and sending is not None:
                self._emit("progress", tid, sending.listener, direction="out", file=sending.transfer.offer.name,
                           via=self.frames.label, **_progress_fields(event.progress))
            elif isinstance(event, TransferCompleted) and sending is not None:
                self._finish_sending(tid, None)
            elif isinstance(event, (TransferCancelled, TransferFailed, TransferRejected)):
                self._ended(event, sending, receiving)
            elif isinstance(event, TransferInterrupted):
                if receiving is not None:
                    receiving.writer.stop()
                    receiving.part.close()  # kept, with its sidecar, for a resume
                    self._receiving.pop(tid, None)
                    self._emit("transfer_interrupted", tid, file=receiving.part.final_name, done=event.done,
                               message="The connection dropped; the partial file is kept and resumes "
                                       "when the same file is sent again.")
                if sending is not None:
                    self._finish_sending(tid, TransferBroken("The connection dropped during the transfer."))
            elif isinstance(event, FrameRefused):
                logger.info("refused a data frame: %s", event.code)
        self._flush()

    def _ended(self, event: TransferCancelled | TransferFailed | TransferRejected,
               sending: _Sending | None, receiving: _Receiving | None) -> None:
        tid = event.transfer_id
        self._recent_ends.append(tid)
        code = event.code if isinstance(event, TransferFailed) else (
            ErrorCode.PAIRING_REJECTED if isinstance(event, TransferRejected) else None)
        kind = {TransferCancelled: "transfer_cancelled", TransferFailed: "transfer_failed",
                TransferRejected: "transfer_rejected"}[type(event)]
        if receiving is not None:
            self._receiving.pop(tid, None)
            stalled = isinstance(event, TransferFailed) and event.code == ErrorCode.STALLED
            receiving.writer.stop(keep=stalled)
            if stalled:
                receiving.part.close()  # nothing wrong with the bytes so far: keep them for a resume
            else:
                receiving.part.discard()
            self._emit(kind, tid, by=event.by, file=receiving.part.final_name,
                       code=None if code is None else str(code), message=event.message)
        if sending is not None:
            error = TransferStopped(self._sentence(event), code=code or ErrorCode.PEER_GONE)
            self._emit(kind, tid, sending.listener, by=event.by, file=sending.transfer.offer.name,
                       code=None if code is None else str(code), message=event.message)
            self._finish_sending(tid, error)

    def _sentence(self, event: TransferCancelled | TransferFailed | TransferRejected) -> str:
        who = "You" if event.by == "local" else self.peer_name
        if isinstance(event, TransferRejected):
            return f"{who} declined the file: {event.message}" if event.by == "peer" else "Declined."
        if isinstance(event, TransferCancelled):
            return f"{who} cancelled the transfer: {event.message}"
        return f"The transfer failed ({event.code}): {event.message}"

    def _finish_sending(self, tid: str, error: PeerbeamError | None) -> None:
        sending = self._sending.pop(tid, None)
        if sending is None:
            return
        if error is None:  # completed: it was necessarily accepted before
            sending.finished.set_result(None)
            return
        for future in (sending.accepted, sending.finished):
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: whoever awaits it sees it; nobody else warns

    # -- receiving --------------------------------------------------------------------------------

    def _consider(self, offer: TransferOffer) -> None:
        if offer.id in self._considering or offer.id in self._receiving:
            return
        if len(self._considering) >= MAX_PENDING_OFFERS:
            self._refuse(offer, "Too many files are waiting for an answer; try again later.")
            return
        self._considering.add(offer.id)
        self._spawn(self._answer(offer))

    def _refuse(self, offer: TransferOffer, message: str) -> None:
        transfer = IncomingTransfer(offer, now=time.monotonic())
        with contextlib.suppress(ValueError):
            self.table.add(transfer)
        transfer.reject(message, time.monotonic())
        self._flush()

    async def _answer(self, offer: TransferOffer) -> None:
        try:
            folder = self.config.downloads
            part = await asyncio.to_thread(PartFile.open, folder, offer)
        except DownloadError as exc:
            self._considering.discard(offer.id)
            self._refuse(offer, exc.message)
            self.reporter.emit("error", code=str(exc.code), message=exc.message, name=self.peer_name)
            return
        try:
            free = shutil.disk_usage(part.folder).free
            if offer.size - part.offset > free:
                self._drop(part)
                self._refuse(offer, f"Not enough free space on {self.config.name} for this file.")
                self._emit("transfer_rejected", offer.id, by="local", file=offer.name, code=str(ErrorCode.DISK_FULL),
                           message=f"Not enough free space for {offer.name} ({offer.size} bytes).")
                return
            self._emit("offer", offer.id, file=offer.name, size=offer.size, offset=part.offset,
                       saved_as=part.final_name)
            accepted = await asyncio.wait_for(self._decide(self.peer_name, offer, part.offset),
                                              self.config.offer_timeout)
        except (TimeoutError, asyncio.CancelledError, Exception) as exc:
            self._drop(part)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not isinstance(exc, TimeoutError):
                logger.exception("deciding on an offer failed")
            self._refuse(offer, "Nobody answered the offer in time.")
            return
        finally:
            self._considering.discard(offer.id)
        if self._closed:
            self._drop(part)
            return
        now = time.monotonic()
        if not accepted:
            part.discard()  # declined: the user does not want this file, not even a part of it
            self._refuse(offer, f"{self.config.name} declined the file.")
            self._emit("transfer_rejected", offer.id, by="local", file=offer.name, message="You declined the file.")
            return
        # One sha-256 for both: the machine hashes what arrives, the .part's commit checks it.
        transfer = IncomingTransfer(offer, now=now, resume_offset=part.offset, resume_digest=part.share_digest())
        try:
            self.table.add(transfer)
        except ValueError:
            part.close()
            return
        self._receiving[offer.id] = _Receiving(transfer, part)
        self._emit("incoming", offer.id, file=part.final_name, size=offer.size, offset=part.offset)
        self._handle(transfer.accept(now))

    @staticmethod
    def _drop(part: PartFile) -> None:
        """Not now: keep bytes received earlier for a later resume, but no empty .part."""
        if part.offset:
            part.close()
        else:
            part.discard()

    async def _commit(self, receiving: _Receiving) -> None:
        tid = receiving.transfer.id
        try:
            await receiving.writer.flush()
            receiving.writer.stop()
            final = await asyncio.to_thread(receiving.part.commit)
        except DownloadError as exc:
            self._handle(receiving.transfer.fail(exc.code, exc.message, time.monotonic()))
            return
        self._receiving.pop(tid, None)
        self._emit("received_file", tid, path=str(final), file=final.name, size=receiving.transfer.size,
                   sha256=receiving.transfer.offer.sha256, via=receiving.via,
                   seconds=round(time.monotonic() - receiving.started, 3))
        self._handle(receiving.transfer.committed(time.monotonic()))

    async def _watch_stalls(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.config.stall_timeout / 4))
            now = time.monotonic()
            for receiving in list(self._receiving.values()):
                transfer = receiving.transfer
                if transfer.state is TransferState.TRANSFERRING and now - receiving.last_data > self.config.stall_timeout:
                    self._handle(transfer.fail(
                        ErrorCode.STALLED,
                        f"No data for {self.config.stall_timeout:g} s; the partial file is kept for a resume.", now))

    def cancel(self, transfer_id: str | None, message: str = "Cancelled by the user.") -> list[str]:
        """Cancel one live transfer (or all of them with None); returns the ids cancelled."""
        now = time.monotonic()
        ids = [t for t in [*self._sending, *self._receiving] if transfer_id in (None, t)]
        for tid in ids:
            transfer = self.table.get(tid)
            if transfer is not None:
                self._handle(transfer.cancel(message, now))
        return ids

    # -- sending ----------------------------------------------------------------------------------

    async def send_file(self, path: Path, listener: Listener | None = None,
                        sha256: str | None = None) -> SendResult:
        """Offer ``path``, send it from the accepted offset, return once the receiver verified it."""
        size = path.stat().st_size
        digest = sha256 if sha256 is not None else await asyncio.to_thread(file_digest, path)
        name = path.name
        tid = transfer_id(self._pair_secret, digest, size, name).hex()
        if tid in self._sending:
            raise TransferError(f"{name} is already being sent to {self.peer_name}.", code=ErrorCode.BAD_MESSAGE)
        transfer = OutgoingTransfer(transfer_id=tid, name=name, size=size, sha256=digest, now=time.monotonic(),
                                    chunk_size=self.frames.max_frame_bytes - HEADER_BYTES)
        try:
            self.table.add(transfer)
        except ValueError:
            raise TransferError(f"{name} is already being received from {self.peer_name}.",
                                code=ErrorCode.BAD_MESSAGE) from None
        sending = _Sending(path, transfer, listener)
        self._sending[tid] = sending
        self._emit("offered", tid, listener, file=name, size=size, sha256=digest)
        self._flush()
        try:
            try:
                offset = await asyncio.wait_for(asyncio.shield(sending.accepted), self.config.offer_timeout)
            except TimeoutError:
                self._handle(transfer.cancel("Nobody answered the offer in time.", time.monotonic()))
                raise TransferStopped(f"{self.peer_name} did not answer the offer within "
                                      f"{self.config.offer_timeout:g} s.", code=ErrorCode.CONNECT_TIMEOUT) from None
            self._emit("accepted", tid, listener, file=name, size=size, offset=offset, via=self.frames.label)
            started = time.monotonic()
            pump = self._spawn(self._pump(sending))
            try:
                await asyncio.shield(sending.finished)
            finally:
                pump.cancel()
        except asyncio.CancelledError:
            # The `peerbeam send` that asked for this went away (Ctrl-C): stop, and say so.
            self._handle(transfer.cancel("The sender stopped the transfer.", time.monotonic()))
            self._sending.pop(tid, None)
            raise
        result = SendResult(tid, name, size, digest, round(time.monotonic() - started, 3), offset, self.frames.label)
        self._emit("sent_file", tid, listener, file=name, size=size, sha256=digest, seconds=result.seconds,
                   resumed_from=offset, via=self.frames.label)
        return result

    async def _pump(self, sending: _Sending) -> None:
        transfer = sending.transfer
        try:
            fd = os.open(sending.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._handle(transfer.fail(ErrorCode.INTERNAL, f"The file could not be read ({exc.strerror}).",
                                       time.monotonic()))
            return
        try:
            block = b""
            block_at = 0
            while (want := transfer.next_read()) is not None:
                offset, length = want
                if offset < block_at or offset + length > block_at + len(block):
                    block = await asyncio.to_thread(os.pread, fd, max(READ_BLOCK, length), offset)
                    block_at = offset
                    if len(block) < length:
                        self._handle(transfer.fail(ErrorCode.INTERNAL, "The file shrank while it was being sent.",
                                                   time.monotonic()))
                        return
                    if transfer.next_read() != want:  # cancelled while reading
                        continue
                start = offset - block_at
                frame = transfer.encode_chunk(block[start:start + length], time.monotonic())
                try:
                    self.frames.send_frame(frame)
                    # Returns at once below the high mark; past it, waits for the low one.
                    await self.frames.wait_writable()
                except (PeerbeamError, RuntimeError):
                    return  # the channel is gone; the session's interrupt_all tells the caller
            self._flush()
        finally:
            os.close(fd)

    # -- lifecycle --------------------------------------------------------------------------------

    def interrupt_all(self) -> None:
        self._handle(self.table.interrupt_all(time.monotonic()))

    async def close(self) -> None:
        self._closed = True
        self.interrupt_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
