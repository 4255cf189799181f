"""The receiver's write-behind (files.PartWriter): a .part written on a thread of its own, in
order, with disk errors brought back to the event loop and a bound on what waits for the disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from peer_agent.downloads import DownloadError, HashMismatch, PartFile
from peer_agent.files import WRITE_BEHIND, PartWriter
from signaling.schema import TransferOffer

CHUNK = 65_501  # a fast-path frame's payload


def offer_for(data: bytes) -> TransferOffer:
    return TransferOffer(id="00112233aabbccdd", name="big.bin", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest())


def chunks(data: bytes) -> list[tuple[int, bytes]]:
    return [(i, data[i:i + CHUNK]) for i in range(0, len(data), CHUNK)]


async def test_writes_land_in_order_off_the_loop_and_the_part_commits(tmp_path: Path) -> None:
    data = os.urandom(20 * 1024 * 1024 + 123)
    part = PartFile.open(tmp_path, offer_for(data))
    writers: set[str] = set()
    real_write = part.write

    def spy(offset: int, chunk: bytes) -> None:  # records which thread wrote, writes for real
        writers.add(threading.current_thread().name)
        real_write(offset, chunk)

    part.write = spy  # type: ignore[method-assign]
    writer = PartWriter(part)
    for offset, chunk in chunks(data):
        writer.write(offset, chunk)
    await writer.flush()
    writer.stop()
    assert writers and all(name.startswith("peerbeam-part") for name in writers)
    assert part.commit().read_bytes() == data  # PartFile's own sha-256 check passed


async def test_a_full_disk_comes_back_as_the_transfer_error(tiny_disk: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)  # the tmpfs holds 1 MiB
    part = PartFile.open(tiny_disk, offer_for(data))
    writer = PartWriter(part)
    with pytest.raises(DownloadError) as raised:
        for offset, chunk in chunks(data):
            writer.write(offset, chunk)
        await writer.flush()
    assert raised.value.code == "disk_full"
    writer.stop(keep=False)
    part.discard()
    assert [p.name for p in tiny_disk.iterdir() if not p.name.startswith(".")] == []


async def test_stop_keeps_every_byte_handed_over_for_a_resume(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024)
    offer = offer_for(data)
    part = PartFile.open(tmp_path, offer)
    writer = PartWriter(part)
    half = chunks(data)[:40]
    for offset, chunk in half:
        writer.write(offset, chunk)
    writer.stop()  # the connection dropped: no flush, but nothing handed over is lost
    part.close()
    again = PartFile.open(tmp_path, offer)
    assert again.offset == 40 * CHUNK
    assert again.prefix_digest().hexdigest() == hashlib.sha256(data[:40 * CHUNK]).hexdigest()
    again.discard()
    with pytest.raises(DownloadError):
        writer.write(40 * CHUNK, data[40 * CHUNK:])  # nothing after the end


class SlowDisk(PartFile):
    """A PartFile whose writes wait for the test to let them through (a disk that stalls)."""

    gate: threading.Event

    def write(self, offset: int, data: bytes) -> None:
        self.gate.wait(10)
        super().write(offset, data)


async def test_the_loop_waits_for_a_slow_disk_instead_of_filling_memory(tmp_path: Path) -> None:
    data = os.urandom(WRITE_BEHIND + 4 * 1024 * 1024)
    part = SlowDisk.open(tmp_path, offer_for(data))
    assert isinstance(part, SlowDisk)
    part.gate = threading.Event()
    writer = PartWriter(part)
    pieces = chunks(data)
    handed = 0
    behind_bound = WRITE_BEHIND // CHUNK + 1024 * 1024 // CHUNK + 2  # what may wait, in chunks

    def produce() -> None:
        nonlocal handed
        for offset, chunk in pieces:
            writer.write(offset, chunk)
            handed += 1

    producer = threading.Thread(target=produce)  # stands in for the event loop, which would block
    producer.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and producer.is_alive() and handed < behind_bound:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert producer.is_alive() and handed <= behind_bound  # blocked: the disk has taken nothing
    part.gate.set()
    producer.join(10)
    assert not producer.is_alive() and handed == len(pieces)
    await writer.flush()
    writer.stop()
    assert part.commit().read_bytes() == data


def test_a_shared_digest_is_hashed_once_by_its_holder_and_still_checked_at_commit(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    part = PartFile.open(tmp_path / "a", offer_for(data))
    digest = part.share_digest()  # what FileShell gives IncomingTransfer, which hashes each frame
    for offset, chunk in chunks(data):
        digest.update(chunk)
        part.write(offset, chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()  # once each, not twice
    assert part.commit().read_bytes() == data
    # The commit still checks: bytes its holder never hashed do not pass.
    other = PartFile.open(tmp_path / "b", offer_for(data))
    other.share_digest()
    other.write(0, data)
    with pytest.raises(HashMismatch):
        other.commit()
