"""The sync wire of one shared document (docs/SYNC.md "Wire"): y-protocols over ``sync.update``.

Pure: no I/O, time passed in as ``now`` (seconds, any monotonic clock), as in aioquic. The
asyncio shell (``peer_agent/syncing.py``) feeds it::

    link = SyncLink(doc_id, doc, now)             # doc: a SyncDoc
    doc.on_local_update(lambda u: link.local(u, clock()))
    send(link.start(now))                         # on sync.open and on every reconnect
    send(link.receive(msg, now))                  # each sync.update for any doc; raises SyncError
                                                  #   UNKNOWN_DOC | BAD_UPDATE | UPDATE_TOO_LARGE:
                                                  #   answer a channel error, keep the session
    send(link.flush(now))                         # at link.next_deadline() (None: nothing to do)
    link.behind(now, dropped.more)                # the inbound rate limit dropped a sync.update
    send(link.resync_due(now))                    # a fresh step 1 once ≥ 1 s passed since then
                                                  #   (also at next_deadline(): an update that
                                                  #   arrived before what it builds on asks too)

Every method returns ``list[SyncUpdate]``: the chunks of whole messages, to send in order and
never interleaved with another list's chunks (the receiver reassembles by ``more``).

The bytes of a reassembled message are y-protocols' behind the y-websocket outer type:
``0`` (messageSync), ``varuint(0 | 1 | 2)`` (step 1 | step 2 | update), ``varuint8array``.
Outgoing messages are what pycrdt's ``create_sync_message`` / ``handle_sync_message`` /
``create_update_message`` write (step 2 is built here from ``SyncDoc.encode``, byte for byte
what ``handle_sync_message`` returns, see tests/unit/test_sync_wire.py). Incoming ones are parsed here rather than by
``handle_sync_message``, which trusts its input (IndexError on a cut varuint, trailing bytes
ignored) and would apply the update straight to the pycrdt doc, past ``SyncDoc.apply_update``'s
checks and its local/remote bookkeeping.

Local updates are queued and coalesced with ``merge_updates``; ``flush`` sends at most one batch
per ``BATCH_INTERVAL``. ``start`` drops the queue: the peer's own step 1, which it sends on every
(re)connect, fetches everything it lacks in our step 2. A batch that would exceed
``MAX_SYNC_MESSAGE`` merged goes out as one message per update instead. A step 2 is one message
whatever its size: a document over 1 MiB (thousands of highlights) would be refused by the peer.
"""

from __future__ import annotations

import math
from typing import Final

from pycrdt import (
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    merge_updates,
    write_message,
)

from signaling.schema import MAX_SYNC_CHUNK, MAX_SYNC_MESSAGE, ErrorCode, SyncUpdate

from .sync_doc import SyncDoc, SyncError

BATCH_INTERVAL: Final = 0.05  # docs/SYNC.md: at most one batch of local updates per 50 ms
RESYNC_DELAY: Final = 1.0  # docs/SYNC.md: a fresh step 1 once messages flow again, ≥ 1 s later
_MERGE_EVERY: Final = 64  # queued updates merged early, so a stalled flush keeps the queue small


def _read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """lib0 varuint at ``pos`` → (value, next position). lib0 writes at most 53 bits: ≤ 8 bytes."""
    value = shift = 0
    for index in range(pos, min(len(data), pos + 8)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent a sync message that is cut short.")


def parse_sync_message(data: bytes) -> tuple[YSyncMessageType, bytes]:
    """Split one reassembled message into its y-protocols type and payload; strict, as the
    bytes come from the other device (one message, nothing after it)."""
    if not data or data[0] != YMessageType.SYNC:
        raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent something that is not a sync message.")
    kind, pos = _read_var_uint(data, 1)
    length, pos = _read_var_uint(data, pos)
    if kind not in (YSyncMessageType.SYNC_STEP1, YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE):
        raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent a sync message of an unknown type.")
    if pos + length != len(data):
        raise SyncError(ErrorCode.BAD_UPDATE, "The other device sent a sync message of the wrong length.")
    return YSyncMessageType(kind), data[pos:]


class SyncLink:
    """The wire side of one open document: handshake, reassembly, batching, re-sync."""

    def __init__(self, doc_id: str, doc: SyncDoc, now: float) -> None:
        self.doc_id = doc_id
        self.doc = doc
        self._parts: list[bytes] = []
        self._size = 0
        self._discarding = False  # the rest of an oversized message is skipped up to its last chunk
        self._resync_after_discard = False
        self._queue: list[bytes] = []
        self._last_batch = -math.inf
        self._behind_since: float | None = None

    # -- outgoing

    def _chunks(self, message: bytes) -> list[SyncUpdate]:
        return [SyncUpdate(doc=self.doc_id, data=message[at:at + MAX_SYNC_CHUNK],
                           more=at + MAX_SYNC_CHUNK < len(message))
                for at in range(0, len(message), MAX_SYNC_CHUNK)]

    def start(self, now: float) -> list[SyncUpdate]:
        """Step 1 (our state vector): on ``sync.open`` and on every reconnect."""
        self._parts, self._size, self._discarding = [], 0, False
        self._resync_after_discard = False
        self._queue.clear()
        self._behind_since = None
        return self._chunks(create_sync_message(self.doc.doc))

    def local(self, update: bytes, now: float) -> None:
        """A local transaction's update (``SyncDoc.on_local_update``), sent by a later ``flush``."""
        self._queue.append(update)
        if len(self._queue) >= _MERGE_EVERY:
            self._queue = [merge_updates(*self._queue)]

    def flush(self, now: float) -> list[SyncUpdate]:
        """The queued updates as one ``update`` message, unless a batch left < 50 ms ago."""
        if not self._queue or now < self._last_batch + BATCH_INTERVAL:
            return []
        queue, self._queue = self._queue, []
        self._last_batch = now
        message = create_update_message(merge_updates(*queue) if len(queue) > 1 else queue[0])
        if len(message) <= MAX_SYNC_MESSAGE:
            return self._chunks(message)
        # Merged, the batch would exceed what the peer reassembles; each op alone is far smaller.
        return [chunk for update in queue for chunk in self._chunks(create_update_message(update))]

    def next_deadline(self) -> float | None:
        """When ``flush`` or ``resync_due`` has something to send; None: nothing pending."""
        deadlines = []
        if self._queue:
            deadlines.append(self._last_batch + BATCH_INTERVAL)
        if self._behind_since is not None:
            deadlines.append(self._behind_since + RESYNC_DELAY)
        return min(deadlines, default=None)

    def behind(self, now: float, more: bool | None = None) -> None:
        """An inbound ``sync.update`` of this doc was dropped by the rate limit: some change may
        be lost. Each drop restarts the wait, so the re-sync goes out once the flood is over.

        The drop also broke the message that chunk belonged to. Given the dropped chunk's
        ``more``, the reassembly stays exact: the partial message goes, and so does the rest of
        it when ``more`` says the dropped chunk was not its last. Without it, only a partial
        message in progress tells, and the rest of that one is skipped (had the drop been its
        last chunk, the next message goes too; if the drop was a message's first chunk, its
        tail arrives alone and is refused as ``bad_update``); the re-sync repairs both.
        """
        self._behind_since = now
        if more is not None:
            self._parts, self._size, self._discarding = [], 0, more
        elif self._parts:
            self._parts, self._size, self._discarding = [], 0, True

    def resync_due(self, now: float) -> list[SyncUpdate]:
        """A fresh step 1 if the doc fell behind ≥ 1 s ago (the peer's step 2 fills the gap:
        re-sync by state vector is idempotent), else nothing."""
        if self._behind_since is None or now < self._behind_since + RESYNC_DELAY:
            return []
        self._behind_since = None
        return self._chunks(create_sync_message(self.doc.doc))

    # -- incoming

    def receive(self, msg: SyncUpdate, now: float) -> list[SyncUpdate]:
        """One chunk from the peer; a completed message is applied (step 2, update) or answered
        (step 1 → our step 2). Raises SyncError; the link stays usable afterwards."""
        if msg.doc != self.doc_id:
            raise SyncError(ErrorCode.UNKNOWN_DOC, "That sync message is for a document that is not open.")
        if self._discarding:
            self._discarding = msg.more
            if not msg.more and self._resync_after_discard:
                # The end of an oversized message; or, if its sender never ended it, the end of
                # the sender's next message, skipped as its tail: a re-sync brings that back.
                self._resync_after_discard = False
                self._behind_since = now
            return []
        self._parts.append(msg.data)
        self._size += len(msg.data)
        if self._size > MAX_SYNC_MESSAGE:
            # Not after a step 2: a peer whose whole document is over 1 MiB would be asked again
            # and again, every second.
            self._resync_after_discard = msg.more and self._parts[0][1:2] != bytes([YSyncMessageType.SYNC_STEP2])
            self._parts, self._size, self._discarding = [], 0, msg.more
            raise SyncError(ErrorCode.UPDATE_TOO_LARGE, "The other device sent a sync message over 1 MiB; it was dropped.")
        if msg.more:
            return []
        data, self._parts, self._size = b"".join(self._parts), [], 0
        kind, payload = parse_sync_message(data)
        if kind == YSyncMessageType.SYNC_STEP1:
            reply = bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(self.doc.encode(payload))
            return self._chunks(reply)
        self.doc.apply_update(payload)
        if kind == YSyncMessageType.SYNC_STEP2:
            self.doc.forget_incomplete()
        elif self.doc.incomplete and self._behind_since is None:
            # An update came before what it builds on (something was lost on the way): ask for
            # the gap with a step 1, once, a re-sync delay from now (y-crdt issue #431's advice).
            self._behind_since = now
        return []
