"""The sync wire (peer_agent/sync_wire.py): two SyncDocs linked in memory by SyncLinks.

Every chunk goes through the real channel codec (encode → decode_channel), so the chunks are
also proven to fit the schema (≤ 32 KiB of data, 64 KiB frames). Time is passed in by hand.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import (
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    merge_updates,
)

from peer_agent.sync_doc import SyncDoc, SyncError
from peer_agent.sync_wire import (
    BATCH_INTERVAL,
    RESYNC_DELAY,
    SyncLink,
    parse_sync_message,
)
from signaling.schema import (
    MAX_SYNC_CHUNK,
    MAX_SYNC_MESSAGE,
    ErrorCode,
    SyncUpdate,
    decode_channel,
    encode,
)
from tests.unit.sync_ops import operations

DOC_ID = "0123456789abcdef"
URL = "https://example.com/page"
H1, B1, B2 = "0123456789abcdef", "00000000000000b1", "00000000000000b2"


def wire(chunks: list[SyncUpdate]) -> list[SyncUpdate]:
    out = []
    for chunk in chunks:
        decoded = decode_channel(encode(chunk))
        assert isinstance(decoded, SyncUpdate) and decoded == chunk
        out.append(decoded)
    return out


def messages(chunks: list[SyncUpdate]) -> list[list[SyncUpdate]]:
    """Chunks grouped into whole messages (the last chunk of each has more=False)."""
    grouped: list[list[SyncUpdate]] = [[]]
    for chunk in wire(chunks):
        grouped[-1].append(chunk)
        if not chunk.more:
            grouped.append([])
    assert grouped[-1] == [], "a list ended inside a message"
    return grouped[:-1]


def joined(chunks: list[SyncUpdate]) -> bytes:
    return b"".join(chunk.data for chunk in chunks)


class Side:
    """One device: a document, its link, and its local updates fed to the link."""

    def __init__(self, client_id: int, doc: SyncDoc | None = None, now: float = 0.0) -> None:
        self.doc = doc or SyncDoc(client_id=client_id)
        self.now = now
        self.link = SyncLink(DOC_ID, self.doc, now)
        self.doc.on_local_update(lambda update: self.link.local(update, self.now))

    def receive_all(self, chunks: list[SyncUpdate]) -> list[SyncUpdate]:
        replies: list[SyncUpdate] = []
        for chunk in wire(chunks):
            replies += self.link.receive(chunk, self.now)
        return replies


def handshake(a: Side, b: Side) -> None:
    """Both send step 1 (sync.open / reconnect); each answers the other's with step 2."""
    a_step1, b_step1 = a.link.start(a.now), b.link.start(b.now)
    a_step2, b_step2 = b.receive_all(a_step1), a.receive_all(b_step1)
    assert a.receive_all(a_step2) == [] and b.receive_all(b_step2) == []


def test_the_bytes_are_pycrdts_y_protocols_messages() -> None:
    a, b = Side(1), Side(2)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    step1 = joined(a.link.start(0.0))
    assert step1 == create_sync_message(a.doc.doc)
    assert step1[:2] == b"\x00\x00"  # messageSync, then syncStep1
    step2 = joined(b.link.receive(SyncUpdate(doc=DOC_ID, data=step1), 0.0))
    assert step2 == handle_sync_message(step1[1:], b.doc.doc)
    updates: list[bytes] = []
    b.doc.on_local_update(updates.append)
    b.doc.open_tab("t2", URL, "B", 1, "phone")
    b.doc.scroll("t2", 0.5, 0, 0, "phone")
    data = joined(b.link.flush(0.0))
    kind, payload = parse_sync_message(data)
    assert kind == YSyncMessageType.SYNC_UPDATE and data == create_update_message(payload)
    # merge_updates is not byte-stable (Yrs iterates a hash map), so compare what it means.
    assert SyncDoc(state=payload).state() == SyncDoc(state=merge_updates(*updates)).state() == b.doc.state()


def test_a_handshake_merges_two_documents_that_never_met() -> None:
    a, b = Side(1), Side(2)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    b.doc.add_bookmark("00000000000000b1", URL, "B", 5, "phone")
    handshake(a, b)
    assert a.doc.state() == b.doc.state()
    assert "t1" in b.doc.state()["tabs"] and "00000000000000b1" in a.doc.state()["bookmarks"]


def test_local_updates_are_coalesced_into_at_most_one_batch_per_50_ms() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    updates: list[bytes] = []
    a.doc.on_local_update(updates.append)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    deadline = a.link.next_deadline()
    assert deadline is not None and deadline <= 0.0  # the first batch may leave at once
    first = a.link.flush(0.0)
    assert len(messages(first)) == 1 and a.link.next_deadline() is None
    a.now = 0.01
    a.doc.scroll("t1", 0.1, 1, 0, "pc")
    a.now = 0.02
    a.doc.scroll("t1", 0.2, 2, 0, "pc")
    a.doc.find("t1", "x", 0, 1, "pc")
    assert a.link.flush(0.03) == [] and a.link.flush(0.0499) == []
    assert a.link.next_deadline() == pytest.approx(BATCH_INTERVAL)
    batch = a.link.flush(BATCH_INTERVAL)
    assert len(messages(batch)) == 1 and a.link.next_deadline() is None
    kind, payload = parse_sync_message(joined(batch))
    assert kind == YSyncMessageType.SYNC_UPDATE
    assert SyncDoc(state=payload).state() == SyncDoc(state=merge_updates(*updates[1:])).state()
    b.receive_all(first + batch)
    assert b.doc.state() == a.doc.state()
    assert b.doc.state()["scroll"]["t1"]["fraction"] == 0.2


def test_a_100_kb_update_travels_in_chunks_and_is_reassembled() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    for i in range(40):  # one batch: ~40 highlights of ~2.5 KB each
        a.doc.add_highlight(f"{i:016x}", URL, i, 0, 10, "q" * 2000, "n" * 500, "yellow", "pc")
    chunks = a.link.flush(0.0)
    sizes = [len(chunk.data) for chunk in chunks]
    assert sum(sizes) > 100_000 and len(messages(chunks)) == 1
    assert max(sizes) <= MAX_SYNC_CHUNK and [c.more for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert b.receive_all(chunks) == []
    assert b.doc.state() == a.doc.state() and len(b.doc.state()["highlights"]) == 40


def test_a_big_document_is_sent_as_a_chunked_step_2() -> None:
    a, b = Side(1), Side(2)
    for i in range(60):
        a.doc.add_bookmark(f"{i:016x}", URL + "/" + "p" * 3000, "t" * 1000, i, "pc")
    assert len(a.doc.encode()) > 200_000
    handshake(a, b)
    assert b.doc.state() == a.doc.state()


def test_a_batch_over_1_mib_goes_out_as_one_message_per_update() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    big = "😀" * 1990  # 4 bytes each in UTF-8
    for i in range(40):
        a.doc.add_highlight(f"{i:016x}", "https://x/" + "😀" * 2000, i, 0, 1, big, "😀" * 3990, "pink", "pc")
    chunks = a.link.flush(0.0)
    assert sum(len(c.data) for c in chunks) > MAX_SYNC_MESSAGE
    assert len(messages(chunks)) == 40
    b.receive_all(chunks)  # none of them is refused as too large
    assert len(b.doc.state()["highlights"]) == 40


# ---- refusals ---------------------------------------------------------------------------------


def test_an_update_for_another_document_raises_unknown_doc() -> None:
    a = Side(1)
    with pytest.raises(SyncError) as caught:
        a.link.receive(SyncUpdate(doc="ffffffffffffffff", data=b"\x00\x02\x02\x00\x00"), 0.0)
    assert caught.value.code == ErrorCode.UNKNOWN_DOC and caught.value.remote


def _working_after(a: Side) -> None:
    """The link still takes a normal update after a refusal."""
    other = SyncDoc(client_id=99)
    other.add_bookmark("00000000000000ff", URL, "after the error", 1, "phone")
    message = create_update_message(other.encode())
    assert a.link.receive(SyncUpdate(doc=DOC_ID, data=message), 0.0) == []
    assert "00000000000000ff" in a.doc.state()["bookmarks"]


def test_a_message_over_1_mib_is_dropped_with_update_too_large_and_the_link_keeps_working() -> None:
    a = Side(1)
    chunk = SyncUpdate(doc=DOC_ID, data=b"\x00" * MAX_SYNC_CHUNK, more=True)
    for _ in range(MAX_SYNC_MESSAGE // MAX_SYNC_CHUNK):  # exactly 1 MiB is still allowed
        assert a.link.receive(chunk, 0.0) == []
    with pytest.raises(SyncError) as caught:
        a.link.receive(chunk, 0.0)
    assert caught.value.code == ErrorCode.UPDATE_TOO_LARGE
    # The rest of that message is skipped quietly, up to and with its last chunk.
    for _ in range(5):
        assert a.link.receive(chunk, 0.0) == []
    assert a.link.receive(SyncUpdate(doc=DOC_ID, data=b"\x00", more=False), 0.0) == []
    _working_after(a)


def test_exactly_1_mib_is_reassembled_and_parsed() -> None:
    a = Side(1)
    chunk = SyncUpdate(doc=DOC_ID, data=b"\x00" * MAX_SYNC_CHUNK, more=True)
    for _ in range(MAX_SYNC_MESSAGE // MAX_SYNC_CHUNK - 1):
        a.link.receive(chunk, 0.0)
    with pytest.raises(SyncError) as caught:  # parsed, and refused as not a y-protocols message
        a.link.receive(SyncUpdate(doc=DOC_ID, data=b"\x00" * MAX_SYNC_CHUNK), 0.0)
    assert caught.value.code == ErrorCode.BAD_UPDATE
    _working_after(a)


BAD_MESSAGES = {
    "awareness": b"\x01\x02\x00\x00",
    "unknown sync type": b"\x00\x03\x02\x00\x00",
    "trailing bytes": b"\x00\x02\x02\x00\x00\x00",
    "cut payload": b"\x00\x02\x05\x00\x00",
    "cut varuint": b"\x00\x02\xff",
    "only the outer type": b"\x00",
    "damaged update": b"\x00\x02\x04\x01\x02\xff\xff",
    "damaged state vector": b"\x00\x00\x03\xff\xff\xff",
}


@pytest.mark.parametrize("data", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
def test_a_bad_sync_message_raises_bad_update_and_the_link_keeps_working(data: bytes) -> None:
    a = Side(1)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    before = a.doc.encode()
    with pytest.raises(SyncError) as caught:
        a.link.receive(SyncUpdate(doc=DOC_ID, data=data), 0.0)
    assert caught.value.code == ErrorCode.BAD_UPDATE
    assert a.doc.encode() == before
    _working_after(a)


# ---- re-sync and reconnect --------------------------------------------------------------------


def test_an_update_dropped_by_the_rate_limit_comes_back_with_a_resync() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    a.doc.add_bookmark("00000000000000b1", URL, "lost on the way", 1, "pc")
    a.link.flush(0.0)  # ...and b's rate limit drops it
    b.link.behind(10.0)
    b.now = 10.5
    assert b.link.next_deadline() == 10.0 + RESYNC_DELAY
    assert b.link.resync_due(10.5) == []
    b.link.behind(10.8)  # still flooded: the wait starts again
    assert b.link.resync_due(11.5) == [] and b.link.next_deadline() == pytest.approx(11.8)
    step1 = b.link.resync_due(11.8)
    assert joined(step1) == create_sync_message(b.doc.doc)
    assert b.link.resync_due(20.0) == [] and b.link.next_deadline() is None
    b.receive_all(a.receive_all(step1))
    assert b.doc.state()["bookmarks"]["00000000000000b1"]["title"] == "lost on the way"


def test_an_update_that_arrives_without_its_predecessor_schedules_a_resync() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    a.link.flush(0.0)  # lost, and nobody noticed a drop
    a.doc.navigate("t1", URL + "/2", "B", "pc")
    b.receive_all(a.link.flush(0.1))
    assert b.doc.incomplete and b.link.next_deadline() == pytest.approx(RESYNC_DELAY)
    a.doc.scroll("t1", 0.5, 3, 0, "pc")
    b.receive_all(a.link.flush(0.5))  # more traffic does not push the re-sync back
    assert b.link.resync_due(0.9) == []
    step1 = b.link.resync_due(RESYNC_DELAY)
    b.receive_all(a.receive_all(step1))
    assert not b.doc.incomplete and b.doc.state() == a.doc.state()
    assert b.doc.state()["tabs"]["t1"]["title"] == "B"


def test_a_gap_the_peer_cannot_fill_either_is_given_up_after_its_step_2() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    # A crafted update deleting items of a client nobody has: it can never be complete.
    raw = SyncDoc(client_id=77)
    raw.add_bookmark(B1, URL, "never sent", 1, "pc")
    raw_updates: list[bytes] = []
    raw.on_local_update(raw_updates.append)
    raw.delete_bookmark(B1)
    b.link.receive(SyncUpdate(doc=DOC_ID, data=create_update_message(raw_updates[0])), 0.0)
    assert b.doc.incomplete and b.link.next_deadline() == pytest.approx(RESYNC_DELAY)
    b.receive_all(a.receive_all(b.link.resync_due(RESYNC_DELAY)))
    assert not b.doc.incomplete
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    b.receive_all(a.link.flush(2.0))
    assert b.link.next_deadline() is None and b.doc.state() == a.doc.state()


def test_a_chunk_dropped_inside_a_message_skips_the_rest_of_it_and_the_resync_repairs() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    for i in range(60):
        a.doc.add_highlight(f"{i:016x}", URL, i, 0, 10, "q" * 2000, "", "green", "pc")
    chunks = a.link.flush(0.0)
    assert len(chunks) >= 3
    b.receive_all(chunks[:1])
    b.link.behind(1.0)  # chunks[1] was dropped by the rate limit
    assert b.receive_all(chunks[2:]) == []  # skipped quietly: no bad_update for a spliced message
    assert b.doc.state()["highlights"] == {}
    a.doc.add_bookmark(B1, URL, "a later message", 1, "pc")
    b.receive_all(a.link.flush(1.0))  # the link reads whole messages again
    assert B1 in b.doc.state()["bookmarks"]
    b.receive_all(a.receive_all(b.link.resync_due(2.0)))
    assert b.doc.state() == a.doc.state() and len(b.doc.state()["highlights"]) == 60


@pytest.mark.parametrize("dropped", [0, 1, 2, -1])
def test_told_which_chunk_was_dropped_the_link_skips_exactly_the_broken_message(dropped: int) -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    for i in range(60):
        a.doc.add_highlight(f"{i:016x}", URL, i, 0, 10, "q" * 2000, "", "green", "pc")
    broken = a.link.flush(0.0)
    assert len(broken) >= 4
    a.doc.add_bookmark(B1, URL, "the next message", 1, "pc")
    following = a.link.flush(1.0)
    for index, chunk in enumerate(wire(broken)):
        if index == dropped % len(broken):
            b.link.behind(1.0, chunk.more)  # what the shell knows of the chunk it dropped
        else:
            assert b.link.receive(chunk, 1.0) == []  # never a spliced message: no bad_update
    b.receive_all(following)
    assert B1 in b.doc.state()["bookmarks"]  # the message after the broken one is read whole
    b.receive_all(a.receive_all(b.link.resync_due(2.0)))
    assert b.doc.state() == a.doc.state() and len(b.doc.state()["highlights"]) == 60


def test_start_forgets_a_partial_message_and_the_queue() -> None:
    a, b = Side(1), Side(2)
    handshake(a, b)
    a.link.receive(SyncUpdate(doc=DOC_ID, data=b"\x00\x02", more=True), 0.0)  # the channel broke here
    b.doc.open_tab("t1", URL, "queued", 0, "phone")
    handshake(a, b)  # reconnect: no leftover chunk spoils the step 2, the queue went with it
    assert b.link.flush(1.0) == []
    assert a.doc.state() == b.doc.state() and "t1" in a.doc.state()["tabs"]


def _apart(a: Side, b: Side) -> None:
    """Connected, then apart: whatever either side flushes now is lost with the channel."""
    handshake(a, b)
    a.link.flush(0.0)
    b.link.flush(0.0)


def test_offline_edits_merge_on_reconnect() -> None:
    a, b = Side(1), Side(2)
    a.doc.open_tab("t1", URL, "A", 0, "pc")
    a.doc.add_bookmark(B1, URL, "first", 1, "pc")
    a.doc.add_highlight(H1, URL, 2, 0, 5, "quote", "", "yellow", "pc")
    _apart(a, b)
    a.doc.add_bookmark(B2, URL + "/a", "from the PC", 2, "pc")
    b.doc.add_bookmark("00000000000000b3", URL + "/b", "from the phone", 3, "phone")
    a.doc.rename_bookmark(B1, "renamed on the PC")
    b.doc.delete_bookmark(B1)
    a.doc.edit_highlight(H1, note="note from the PC")
    b.doc.edit_highlight(H1, color="blue")
    b.doc.close_tab("t1")
    a.doc.navigate("t1", URL + "/next", "next", "pc")
    a.doc.set_follow("phone_follows_pc", False)
    a.link.flush(5.0)
    b.link.flush(5.0)  # still apart: lost
    handshake(a, b)
    state = a.doc.state()
    assert state == b.doc.state()
    assert set(state["bookmarks"]) == {B2, "00000000000000b3"}  # the delete wins over the rename
    assert state["highlights"][H1]["note"] == "note from the PC" and state["highlights"][H1]["color"] == "blue"
    assert "t1" not in state["tabs"]  # the close wins over the navigate
    assert state["follow"]["phone_follows_pc"] is False


@pytest.mark.parametrize("first", ["pc", "phone"])
def test_concurrent_scrolls_end_with_one_winner_whatever_arrives_first(first: str) -> None:
    outcomes = []
    for client_ids in ((1, 2), (2, 1)):
        a, b = Side(client_ids[0]), Side(client_ids[1])
        a.doc.open_tab("t1", URL, "A", 0, "pc")
        _apart(a, b)
        a.doc.scroll("t1", 0.25, 10, 0.5, "pc")
        b.doc.scroll("t1", 0.75, 30, 0.1, "phone")
        a_step1, b_step1 = a.link.start(1.0), b.link.start(1.0)
        replies = (b.receive_all(a_step1), a.receive_all(b_step1))
        if first == "pc":
            b.receive_all(replies[1])
            a.receive_all(replies[0])
        else:
            a.receive_all(replies[0])
            b.receive_all(replies[1])
        assert a.doc.state() == b.doc.state()
        scroll = a.doc.state()["scroll"]["t1"]
        assert (scroll["fraction"], scroll["block"], scroll["by"]) in {(0.25, 10.0, "pc"), (0.75, 30.0, "phone")}
        outcomes.append(scroll["by"])
    # The winner depends on the client ids only: swapping them swaps the winner.
    assert outcomes[0] != outcomes[1]


# ---- random delivery --------------------------------------------------------------------------

Step = tuple[str, Any]

steps = st.lists(
    st.one_of(
        *[st.tuples(st.just("op"), st.tuples(st.sampled_from((0, 1)), operations))] * 3,
        st.tuples(st.just("tick"), st.floats(0.0, 0.2)),
        st.tuples(st.just("deliver"), st.tuples(st.integers(0, 10_000), st.booleans())),
        st.tuples(st.just("reconnect"), st.booleans()),
    ),
    min_size=10,
    max_size=80,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, seed=st.integers(0, 2**32))
def test_random_edits_converge_through_shuffled_duplicated_and_delayed_messages(steps: list[Step], seed: int) -> None:
    sides = [Side(1), Side(2)]
    # Messages in flight to side i, in no particular order; each is kept whole (an ordered
    # channel never splits one), but whole messages overtake, repeat and wait.
    flight: list[list[list[SyncUpdate]]] = [[], []]
    now = 0.0

    def send(i: int, chunks: list[SyncUpdate]) -> None:
        flight[1 - i] += messages(chunks)

    def deliver(i: int, message: list[SyncUpdate]) -> None:
        send(i, sides[i].receive_all(message))

    # Handshakes happen at once, so that a late step 2 (a whole state) cannot hide a lost update.
    handshake(*sides)
    for kind, arg in steps:
        if kind == "op":
            i, (name, args) = arg
            getattr(sides[i].doc, name)(*args)
        elif kind == "tick":
            now += arg
        elif kind == "deliver":
            at, duplicate = arg
            target = at % 2
            if flight[target]:
                pick = (at // 2) % len(flight[target])
                message = flight[target][pick] if duplicate else flight[target].pop(pick)
                deliver(target, message)
        elif kind == "reconnect":
            if arg:  # the channel broke: what was in flight is lost
                flight = [[], []]
            handshake(*sides)
        for i in (0, 1):
            sides[i].now = now
            send(i, sides[i].link.flush(now))
    # Quiet again: the last batches go out and everything in flight arrives, in random order.
    now += 1.0
    rng = random.Random(seed)
    for _ in range(100):
        for i in (0, 1):
            send(i, sides[i].link.flush(now))
        if not flight[0] and not flight[1]:
            break
        for target in (0, 1):
            pending, flight[target] = flight[target], []
            rng.shuffle(pending)
            for message in pending:
                deliver(target, message)
    else:
        pytest.fail("messages kept flowing")
    assert sides[0].doc.state() == sides[1].doc.state()
