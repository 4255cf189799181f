"""A paired device that misbehaves in page sync (for tests/integration/test_sync_hostile.py).

    python sync_hostile.py LINK HOME

Joins like `peerbeam join` (as "Hostile"), takes part in the agent's sync session as a headless
phone does (its own Syncer adopts the document and answers step 1), and then obeys one JSON
command per line on stdin, on the real channel with the real codecs. Each command ends with
``{"event": "done", "cmd": NAME, ...}``:

* ``garbage`` / ``cut`` / ``junk_update``: one malformed ``sync.update`` (random bytes; a sync
  message whose length varuint is cut short; a well-formed y-protocols update message whose
  payload is not a Yjs update);
* ``oversize {close}``: a real update (it adds bookmark ``OVERSIZE_BOOKMARK``) padded past
  1 MiB, sent as 33 chunks of 32 KiB with ``more=true`` and its short rest with ``more=false``;
  with ``close: false`` the rest never comes (the message is left open);
* ``unknown_doc``: a ``sync.update`` (a valid step 1) and a ``sync.reader`` for a document that
  is not open;
* ``big_frame``: a ``sync.update`` frame over 64 KiB, written raw (our codec would refuse it);
* ``flood {count, chunks}``: ``count`` scroll operations on its own document, then each one's
  update in its own ``sync.update`` (no coalescing), as fast as the channel takes them; with
  ``chunks: 2`` each message is cut in two chunks. Prints ``flood_started`` once the operations
  are made; ``done`` carries ``sent`` (operations), ``messages`` and ``flood_seconds``;
* ``junk_doc``: writes junk straight into its pycrdt document (wrong types, huge strings,
  javascript: URLs, bad keys, unknown roots) plus one good bookmark ``GOOD_BOOKMARK``, in one
  transaction its Syncer sends like any change;
* ``op {name, args}``: one legit operation, as `peerbeam sync op` does;
* ``state``: ``done`` carries its ``state()`` and the document's size in bytes.

Every ``error``, ``text``, ``sync.open``, ``sync.stop`` and ``sync.refused`` it receives is
printed as ``{"event": "got", "t": TAG, ...}`` (and handled as usual).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from pycrdt import Array, Doc, Map, create_sync_message, create_update_message
from pycrdt import Text as YText

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from crypto.link import parse_link
from peer_agent.config import NodeConfig
from peer_agent.node import Node
from peer_agent.report import JsonReporter
from peer_agent.session import PeerSession
from peer_agent.sync_doc import SyncDoc
from signaling.schema import (
    MAX_SYNC_CHUNK,
    ChannelError,
    ChannelMessage,
    SyncOpen,
    SyncReader,
    SyncRefused,
    SyncStop,
    SyncUpdate,
    Text,
)

OTHER_DOC = "0123456789abcdef"
OVERSIZE_BOOKMARK = "0000000000000bad"
GOOD_BOOKMARK = "000000000000600d"
# Queued in our send buffer at most: enough to keep the channel busy; a deeper queue would only
# delay this peer's own answers (its receipts wait behind it).
FLOOD_BUFFER = 64 * 1024
SHOWN = (ChannelError, Text, SyncOpen, SyncStop, SyncRefused)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


class Hostile:
    def __init__(self, node: Node, session: PeerSession) -> None:
        self.node = node
        self.session = session

    @property
    def doc_id(self) -> str:
        return str(self.node.syncer.show(None)["doc"])

    @property
    def doc(self) -> SyncDoc:
        shared = self.node.syncer.load(self.session.peer_key)
        assert shared is not None, "no sync session"
        return shared.doc

    def send(self, message: ChannelMessage) -> None:
        self.session.link.send(message)

    async def paced(self, message: ChannelMessage) -> None:
        """Send, then wait while the channel's buffer is full: as fast as the channel takes it."""
        self.send(message)
        link = self.session.link
        if link.buffered_amount > FLOOD_BUFFER:
            assert link._channel is not None
            # "bufferedamountlow" fires on crossing this threshold (W3C): below FLOOD_BUFFER.
            link._channel.bufferedAmountLowThreshold = FLOOD_BUFFER // 4
            link._writable.clear()  # rtc.send (unlike send_frame) does not arm the flow control
            await link.wait_writable()

    def update(self, data: bytes, *, more: bool = False, doc: str | None = None) -> None:
        self.send(SyncUpdate(doc=doc or self.doc_id, data=data, more=more))

    # -- the commands

    async def garbage(self) -> dict[str, Any]:
        self.update(b"\xde\xad\xbe\xef" + os.urandom(60))
        return {}

    async def cut(self) -> dict[str, Any]:
        # messageSync, messageYjsUpdate, then a length varuint whose continuation bytes never end.
        self.update(b"\x00\x02\xff\xff")
        return {}

    async def junk_update(self) -> dict[str, Any]:
        self.update(create_update_message(b"\x01\x02\x03\xff\xff\xff junk"))
        return {}

    async def oversize(self, close: bool = True) -> dict[str, Any]:
        # A real update: applied, it would add a bookmark (and a 1.1 MB string under a root of
        # its own). Made on a scratch document: this peer's own document never holds it.
        scratch: Doc[Any] = Doc()
        with scratch.transaction():
            scratch.get("bookmarks", type=Map)[OVERSIZE_BOOKMARK] = Map(
                {"url": "https://example.com/big", "title": "too big", "created": 1.0, "by": "phone"})
            scratch.get("padding", type=Map)["p"] = os.urandom(545_000).hex()  # 1.09 MB: 33 full chunks and a rest
        message = create_update_message(scratch.get_update())
        assert 33 * MAX_SYNC_CHUNK < len(message) < 34 * MAX_SYNC_CHUNK
        chunks = [message[i:i + MAX_SYNC_CHUNK] for i in range(0, len(message), MAX_SYNC_CHUNK)]
        if not close:
            chunks = chunks[:33]  # never finished: the receiver cannot tell where it would end
        for i, chunk in enumerate(chunks):
            await self.paced(SyncUpdate(doc=self.doc_id, data=chunk, more=not close or i < len(chunks) - 1))
        return {"bytes": len(message), "chunks": len(chunks)}

    async def unknown_doc(self) -> dict[str, Any]:
        self.update(create_sync_message(self.doc.doc), doc=OTHER_DOC)
        self.send(SyncReader(doc=OTHER_DOC, card="fedcba9876543210"))
        return {}

    async def big_frame(self) -> dict[str, Any]:
        channel = self.session.link._channel
        assert channel is not None
        data = msgspec.json.encode(b"\x00" * 60_000).decode()  # base64, ~80 KB
        channel.send(f'{{"t":"sync.update","v":1,"doc":"{self.doc_id}","data":{data},"more":false}}')
        return {}

    async def flood(self, count: int, chunks: int = 1) -> dict[str, Any]:
        """``count`` scroll operations made first (so that sending is all this loop does), then
        each one's update in its own message, as fast as the channel takes them."""
        doc = self.doc
        tab = doc.state()["active"]
        assert tab is not None, "no active tab to scroll"
        updates: list[bytes] = []
        stop = doc.on_local_update(updates.append)
        try:
            for i in range(count):
                doc.scroll(tab, (i % 1000) / 1000, i % 60, 0.0, "phone")
        finally:
            stop()
        doc_id = self.doc_id
        messages: list[list[SyncUpdate]] = []  # per operation, its chunks
        for update in updates:
            data = create_update_message(update)
            cut = len(data) // 2 if chunks == 2 else 0
            messages.append([SyncUpdate(doc=doc_id, data=data[:cut], more=True)] if cut else [])
            messages[-1].append(SyncUpdate(doc=doc_id, data=data[cut:]))
        emit("flood_started", tab=tab, messages=sum(map(len, messages)))
        started = time.monotonic()
        for i, parts in enumerate(messages):
            # A message's chunks go out back to back: nothing (our Syncer's own batches) between.
            for part in parts[:-1]:
                self.send(part)
            await self.paced(parts[-1])
            if i % 16 == 0:
                await asyncio.sleep(0)  # keep answering the agent (receipts, pongs) while flooding
        return {"sent": len(updates), "messages": sum(map(len, messages)), "tab": tab,
                "flood_seconds": round(time.monotonic() - started, 3)}

    async def junk_doc(self) -> dict[str, Any]:
        doc = self.doc
        raw = doc.doc
        good = {"url": "https://example.com/good", "title": "good", "order": 1.0, "by": "phone"}
        with doc._transact(local=True):
            tabs = raw.get("tabs", type=Map)
            tabs["t901"] = "a string, not a record"
            tabs["t902"] = Map({**good, "url": "javascript:alert(document.cookie)"})
            tabs["t903"] = Map({**good, "title": "x" * 300_000})
            tabs["t904"] = Map({**good, "order": float("inf")})
            tabs["t905"] = Map({**good, "by": "mallory"})
            tabs["<img src=x onerror=alert(1)>"] = Map(good)
            tabs["t906"] = {**good}  # a plain value where a record belongs
            tabs["t907"] = Map({"url": "https://example.com/", "title": Map({"nested": "type"}), "order": 1.0,
                                "by": "phone"})
            scroll = raw.get("scroll", type=Map)
            scroll["t908"] = Map({"fraction": 0.5, "block": 1.0, "offset": 0.0, "by": "phone", "n": 1.0})
            scroll["t909"] = {"fraction": 7.0, "block": 1.0, "offset": 0.0, "by": "phone", "n": 1.0}
            scroll["t910"] = "0.5"
            scroll["t911"] = {"fraction": 0.5, "block": 1e9, "offset": 0.0, "by": "phone", "n": -1.0}
            raw.get("find", type=Map)["t912"] = {"query": "q" * 100_000, "match": 0.0, "count": 1.0, "by": "phone"}
            highlights = raw.get("highlights", type=Map)
            hl = {"url": "https://example.com/good", "block": 1.0, "start": 1.0, "end": 5.0, "quote": "q",
                  "note": "", "color": "yellow", "by": "phone"}
            highlights["00000000000000a1"] = Map({**hl, "color": "red; background:url(javascript:x)"})
            highlights["00000000000000a2"] = Map({**hl, "start": 9.0, "end": 2.0})
            highlights["00000000000000a3"] = Map({**hl, "url": "javascript:alert(1)"})
            highlights["00000000000000a4"] = Map({**hl, "note": "n" * 50_000})
            bookmarks = raw.get("bookmarks", type=Map)
            bookmarks["00000000000000b1"] = Map({"url": "javascript:alert(document.cookie)", "title": "click me",
                                                 "created": 1.0, "by": "phone"})
            bookmarks["00000000000000b2"] = Map({"url": "data:text/html,<script>alert(1)</script>",
                                                 "title": "data", "created": 1.0, "by": "phone"})
            bookmarks["not-a-hex-id"] = Map({"url": "https://example.com/", "title": "bad key", "created": 1.0,
                                             "by": "phone"})
            bookmarks["00000000000000b3"] = Map({"url": "https://example.com/", "title": "t", "created": -5.0,
                                                 "by": "phone"})
            bookmarks[GOOD_BOOKMARK] = Map({"url": "https://example.com/good", "title": "kept", "created": 2.0,
                                            "by": "phone"})
            reader = raw.get("reader", type=Map)
            reader["t913"] = {"card": "zz", "url": "https://example.com/"}
            reader["t914"] = {"card": "0123456789abcdef", "url": "javascript:alert(1)"}
            follow = raw.get("follow", type=Map)
            follow["phone_follows_pc"] = "yes"
            follow["evil_direction"] = True
            raw.get("evil", type=Map)["payload"] = "<script>alert(1)</script>"
            raw.get("evil_text", type=YText).insert(0, "evil text root")
            raw.get("evil_array", type=Array).append("evil array root")
        return {}

    async def op(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.node.syncer.apply(None, name, args)
        return {}

    async def state(self) -> dict[str, Any]:
        shown = self.node.syncer.show(None)
        return {"state": shown["state"], "size": shown["size"]}


async def main(link: str, home: str) -> None:
    reporter = JsonReporter()
    node = Node(NodeConfig(home=Path(home), name="Hostile", device="cli"), reporter)
    await node.start()
    try:
        record = await node.join(parse_link(link))
        session = node.sessions[record.peer_key]
        normal = session.link.on_message

        def spy(message: ChannelMessage) -> None:
            if isinstance(message, SHOWN):
                emit("got", mono=time.monotonic(), **msgspec.to_builtins(message))
            if normal is not None:
                normal(message)

        session.link.on_message = spy
        hostile = Hostile(node, session)
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        emit("ready")
        while line := await commands.readline():
            request = json.loads(line)
            name = request.pop("cmd")
            started = time.monotonic()
            result = await getattr(hostile, name)(**request)
            emit("done", cmd=name, seconds=round(time.monotonic() - started, 3), **result)
    finally:
        await node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
