"""Page sync's asyncio shell: one shared document per paired device (docs/SYNC.md).

The pure parts are ``sync_doc.SyncDoc`` (the Yjs document through pycrdt) and
``sync_wire.SyncLink`` (y-protocols messages, chunks, coalescing, re-sync). This shell ties them
to the live sessions, the browser extension, the disk and the control socket:

* the side that starts a session — the PC, whose extension reports the tab — *owns* the
  document: it picks its id, sends ``sync.open`` on every connect and the reader views of the
  synced tabs (cards with ``doc`` and ``text``);
* the other side (the phone, or a headless Python peer) adopts that id, says ``rejoin`` after a
  reconnect, and asks again (``sync.reader``) for a reader view it lacks;
* both keep their document on disk, so edits made while apart, or before a restart, merge
  when the devices meet again (y-protocols step 1 / step 2 both ways on every connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from signaling.schema import (
    ChannelError,
    ChannelMessage,
    ErrorCode,
    SyncOpen,
    SyncReader,
    SyncRefused,
    SyncStart,
    SyncStop,
    SyncUpdate,
)

from .beaming import Beamer, ExtensionLink
from .cards import CardReady
from .config import NodeConfig
from .errors import PeerbeamError
from .frames import new_transfer_id
from .page import PageReport, build_card, report_from_extension, report_from_url
from .reader import Reader, ReaderError, decode_reader
from .report import Reporter
from .session import PeerSession
from .sync_doc import SyncDoc, SyncError
from .sync_shapes import URL, tab_key
from .sync_wire import SyncLink

logger = logging.getLogger(__name__)

START_TIMEOUT: Final = 45.0
SAVE_DELAY: Final = 1.0  # seconds of quiet before the document is written to disk
EXTENSION_INTERVAL: Final = 0.05  # ≤ 20 state messages per second to the extension
MAX_REPORTS: Final = 16  # reader views kept per document for a phone that asks again
MAX_TABS: Final = 200
# Operations a user may make (the extension, the CLI); ``set_reader`` is the owner's alone.
USER_OPS: Final = frozenset({
    "open_tab", "close_tab", "navigate", "set_active", "scroll", "find", "add_highlight", "edit_highlight",
    "delete_highlight", "add_bookmark", "rename_bookmark", "delete_bookmark", "set_follow",
})
_WITH_BY: Final = frozenset({"open_tab", "navigate", "scroll", "find", "add_highlight", "add_bookmark"})


class _Saved(msgspec.Struct, frozen=True):
    doc: str
    owner: bool
    state: bytes


@dataclass
class _Shared:
    """The document shared with one paired device."""

    peer_key: bytes
    doc_id: str
    doc: SyncDoc
    owner: bool
    link: SyncLink | None = None
    session: PeerSession | None = None
    timer: asyncio.TimerHandle | None = None
    wake: asyncio.TimerHandle | None = None  # the link's next flush / re-sync (one at a time)
    wake_at: float = 0.0
    reports: dict[str, tuple[str, PageReport]] = field(default_factory=dict)  # card id -> (tab, report)
    readers: dict[str, Reader] = field(default_factory=dict)  # card id -> reader view received
    asked: set[str] = field(default_factory=set)  # reader cards asked for on this connection
    rebuilding: set[str] = field(default_factory=set)  # reader cards asked for that we no longer hold
    dirty: bool = False


class Syncer:
    def __init__(self, *, config: NodeConfig, reporter: Reporter, beamer: Beamer,
                 pick: Callable[[str | None], PeerSession]) -> None:
        self.config = config
        self.reporter = reporter
        self.beamer = beamer
        self._pick = pick
        self.folder = config.home / "sync"
        self._shared: dict[bytes, _Shared] = {}
        self._waiting: dict[bytes, asyncio.Future[str]] = {}  # peer -> our sync.start's answer
        self._starting: set[bytes] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ext_timer: asyncio.TimerHandle | None = None
        self._ext_sent_at = 0.0
        beamer.on_sync_message = self._on_extension_message
        beamer.on_extension = lambda link: self._tell_extensions(now=True)
        beamer.on_reader_card = self._on_reader_card

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- disk -----------------------------------------------------------------------------------

    def _path(self, peer_key: bytes) -> Path:
        return self.folder / f"{hashlib.sha256(peer_key).hexdigest()[:24]}.bin"

    def load(self, peer_key: bytes) -> _Shared | None:
        """The document shared with this device, from memory or from the disk."""
        shared = self._shared.get(peer_key)
        if shared is not None:
            return shared
        path = self._path(peer_key)
        try:
            saved = msgspec.msgpack.decode(path.read_bytes(), type=_Saved)
            doc = SyncDoc(state=saved.state)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError, SyncError) as exc:
            logger.warning("sync document %s unreadable, dropped: %s", path.name, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return self._adopt(peer_key, saved.doc, doc, owner=saved.owner)

    def _adopt(self, peer_key: bytes, doc_id: str, doc: SyncDoc, *, owner: bool) -> _Shared:
        shared = _Shared(peer_key, doc_id, doc, owner)
        self._shared[peer_key] = shared
        doc.on_local_update(lambda update: self._local_update(shared, update))
        doc.on_change(lambda local: self._changed(shared, local))
        return shared

    def _save_later(self, shared: _Shared) -> None:
        shared.dirty = True
        if shared.timer is None:
            shared.timer = asyncio.get_running_loop().call_later(SAVE_DELAY, self._save, shared)

    def _save(self, shared: _Shared) -> None:
        shared.timer = None
        if not shared.dirty or self._shared.get(shared.peer_key) is not shared:
            return
        shared.dirty = False
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(shared.peer_key)
        partial = path.with_suffix(".part")
        data = msgspec.msgpack.encode(_Saved(shared.doc_id, shared.owner, shared.doc.encode()))
        try:
            with open(partial, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
        except OSError as exc:
            logger.warning("sync document not saved: %s", exc)

    def _drop(self, shared: _Shared, *, why: str) -> None:
        if self._shared.get(shared.peer_key) is shared:
            del self._shared[shared.peer_key]
        if shared.timer is not None:
            shared.timer.cancel()
        if shared.wake is not None:
            shared.wake.cancel()
        with contextlib.suppress(FileNotFoundError):
            self._path(shared.peer_key).unlink()
        name = shared.session.name if shared.session else None
        self.reporter.emit("sync_stopped", doc=shared.doc_id, name=name, message=why)
        self._tell_extensions(now=True)

    # -- sessions -------------------------------------------------------------------------------

    def attach(self, session: PeerSession) -> None:
        session.on_sync = self._on_message
        session.on_sync_dropped = self._on_dropped
        shared = self.load(session.peer_key)
        if shared is None:
            return
        shared.session = session
        shared.asked.clear()
        session.send_quietly(SyncOpen(doc=shared.doc_id, rejoin=not shared.owner))
        if shared.owner:
            self._connect(shared, session)

    def detach(self, session: PeerSession) -> None:
        shared = self._shared.get(session.peer_key)
        if shared is not None and shared.session is session:
            shared.session = None
            shared.link = None

    def _connect(self, shared: _Shared, session: PeerSession) -> None:
        """Both sides send step 1 on every connect: each then gets what it lacks (step 2)."""
        now = time.monotonic()
        shared.session = session
        shared.link = SyncLink(shared.doc_id, shared.doc, now)
        self._send_all(session, shared.link.start(now))

    def _send_all(self, session: PeerSession, messages: list[SyncUpdate]) -> None:
        for message in messages:
            session.send_quietly(message)

    def _on_dropped(self, session: PeerSession, message: SyncUpdate) -> None:
        shared = self._shared.get(session.peer_key)
        if shared is not None and shared.link is not None and shared.session is session:
            # ``more``: the rest of a chunked message follows and is skipped, not misjoined.
            shared.link.behind(time.monotonic(), message.more)
            self._schedule(shared)

    def _on_message(self, session: PeerSession, message: ChannelMessage) -> None:
        shared = self._shared.get(session.peer_key)
        if isinstance(message, SyncUpdate):
            if shared is None or shared.link is None or message.doc != shared.doc_id:
                self._refuse(session, ErrorCode.UNKNOWN_DOC,
                             "A page-sync update arrived for a document that is not open here.")
                return
            try:
                replies = shared.link.receive(message, time.monotonic())
            except SyncError as exc:
                self._refuse(session, exc.code, exc.message)
                return
            self._send_all(session, replies)
            self._schedule(shared)
        elif isinstance(message, SyncOpen):
            self._on_open(session, shared, message)
        elif isinstance(message, SyncStart):
            if session.peer_key in self._starting:
                session.send_quietly(SyncRefused(code=ErrorCode.RATE_LIMITED, message="A sync session is already starting."))
                return
            self._starting.add(session.peer_key)
            task = self._spawn(self._answer_start(session))
            task.add_done_callback(lambda _: self._starting.discard(session.peer_key))
        elif isinstance(message, SyncReader):
            if shared is None or not shared.owner or message.doc != shared.doc_id:
                self._refuse(session, ErrorCode.UNKNOWN_DOC, "A reader view was asked for a document that is not open here.")
            elif message.card in shared.reports:
                self._spawn(self._send_reader(shared, message.card))
            else:
                self._rebuild_reader(shared, message.card)
        elif isinstance(message, SyncStop):
            if shared is not None and message.doc == shared.doc_id:
                self._drop(shared, why=f"{session.name} ended page sync.")
        elif isinstance(message, SyncRefused):
            waiter = self._waiting.get(session.peer_key)
            if waiter is not None and not waiter.done():
                waiter.set_exception(PeerbeamError(f"{session.name}: {message.message}", code=message.code))
                waiter.exception()

    def _on_open(self, session: PeerSession, shared: _Shared | None, message: SyncOpen) -> None:
        if message.rejoin:
            # The phone still holds a document. Ours (if any) was announced by attach(); a
            # different or missing one means the session it remembers has ended.
            if shared is None or shared.doc_id != message.doc:
                session.send_quietly(SyncStop(doc=message.doc))
            elif shared.owner and shared.link is None:
                self._connect(shared, session)
            return
        if shared is None or shared.doc_id != message.doc or shared.owner:
            if shared is not None:
                self._drop(shared, why=f"{session.name} started a new page-sync session.")
            shared = self._adopt(session.peer_key, message.doc, SyncDoc(), owner=False)
            self._save_later(shared)
            self.reporter.emit("sync_started", doc=message.doc, name=session.name, by="peer")
        self._connect(shared, session)
        self._ask_reader(shared, shared.doc.state())  # a rejoin: the view we kept may be outdated
        waiter = self._waiting.get(session.peer_key)
        if waiter is not None and not waiter.done():
            waiter.set_result(message.doc)

    def _refuse(self, session: PeerSession, code: ErrorCode, message: str) -> None:
        session.send_quietly(ChannelError(code=code, message=message))
        self.reporter.emit("error", code=str(code), message=f"From {session.name}: {message}", name=session.name)

    # -- changes ----------------------------------------------------------------------------------

    def _local_update(self, shared: _Shared, update: bytes) -> None:
        self._save_later(shared)
        if shared.link is not None:
            shared.link.local(update, time.monotonic())
            self._schedule(shared)

    def _changed(self, shared: _Shared, local: bool) -> None:
        self._save_later(shared)
        if local:
            return
        state = shared.doc.state()
        name = shared.session.name if shared.session else None
        self.reporter.emit("sync_applied", doc=shared.doc_id, name=name, state=state)
        if shared.owner:
            self._tell_extensions()
        elif shared.session is not None:
            self._ask_reader(shared, state)

    def _ask_reader(self, shared: _Shared, state: dict[str, Any]) -> None:
        """The phone side: the active tab's reader view, if this side does not hold it yet."""
        entry = state.get("reader", {}).get(state.get("active") or "")
        card = entry.get("card") if isinstance(entry, dict) else None
        if isinstance(card, str) and card not in shared.readers and card not in shared.asked and shared.session:
            shared.asked.add(card)
            shared.session.send_quietly(SyncReader(doc=shared.doc_id, card=card))

    def _schedule(self, shared: _Shared) -> None:
        """Flush coalesced updates and due re-syncs when the link says so. One timer per
        document: this runs for every message, and a flood must not pile up timers."""
        link = shared.link
        if link is None:
            return
        deadline = link.next_deadline()
        if deadline is None:
            return
        if shared.wake is not None:
            if shared.wake_at <= deadline:
                return  # an earlier wake-up is set; it schedules the next one
            shared.wake.cancel()
        shared.wake_at = deadline
        shared.wake = asyncio.get_running_loop().call_later(max(0.0, deadline - time.monotonic()), self._flush,
                                                            shared)

    def _flush(self, shared: _Shared) -> None:
        shared.wake = None
        link = shared.link
        if link is None or shared.session is None or self._shared.get(shared.peer_key) is not shared:
            return
        now = time.monotonic()
        self._send_all(shared.session, link.flush(now) + link.resync_due(now))
        self._schedule(shared)

    # -- reader views -------------------------------------------------------------------------------

    def _on_reader_card(self, session: PeerSession, ready: CardReady) -> bool:
        """A card with ``doc`` is a reader view, not a beamed page: keep it for the view."""
        shared = self._shared.get(session.peer_key)
        if ready.push.doc is None:
            return False
        if shared is None or shared.doc_id != ready.push.doc or ready.text is None:
            return True
        try:
            reader = decode_reader(ready.text)
        except ReaderError as exc:
            self.reporter.emit("error", code=str(exc.code), message=f"From {session.name}: {exc.message}",
                               name=session.name)
            return True
        shared.readers[ready.push.id] = reader
        while len(shared.readers) > MAX_REPORTS:
            del shared.readers[next(iter(shared.readers))]
        self.reporter.emit("sync_reader", doc=shared.doc_id, name=session.name, card=ready.push.id, url=reader.url,
                           title=reader.title, blocks=len(reader.blocks), thumbnails=len(ready.images),
                           truncated=reader.truncated)
        return True

    async def _send_reader(self, shared: _Shared, card_id: str) -> None:
        tab, report = shared.reports[card_id]
        session = shared.session
        if session is None:
            return
        try:
            card = await build_card(report, self.beamer.limits, self.beamer.http, doc=shared.doc_id, card_id=card_id)
            await self.beamer.send_card(session, card)
        except PeerbeamError as exc:
            logger.info("reader view for tab %s not sent: %s", tab, exc.message)

    def _rebuild_reader(self, shared: _Shared, card_id: str) -> None:
        """A reader view this agent no longer holds (it restarted): make the tab's view anew,
        from the extension if it can read the tab, else by fetching its address."""
        state = shared.doc.state()
        tab = next((key for key, entry in state["reader"].items() if entry.get("card") == card_id), None)
        if tab is None or card_id in shared.rebuilding:
            return
        shared.rebuilding.add(card_id)
        self._spawn(self._recapture(shared, tab, str(state["reader"][tab]["url"])))

    async def _recapture(self, shared: _Shared, tab: str, url: str) -> None:
        if self.beamer.extensions:
            with contextlib.suppress(PeerbeamError):
                reply = await self.beamer.extensions[-1].request({"type": "sync.capture", "tab": tab})
                report = report_from_extension(reply.get("page"))
                if report.reader is not None and self._shared.get(shared.peer_key) is shared:
                    self._set_page(shared, tab, report)
                    return
        await self._fetch_page(shared, tab, url)

    def forget(self, peer_key: bytes) -> None:
        """The pairing is gone: so is the document shared with that device."""
        shared = self.load(peer_key)
        if shared is not None:
            self._drop(shared, why="The pairing was removed.")

    def _set_page(self, shared: _Shared, tab: str, report: PageReport) -> str:
        """Name a new reader view of ``tab`` in the document and send it if the phone is here."""
        card_id = new_transfer_id()
        shared.reports[card_id] = (tab, report)
        while len(shared.reports) > MAX_REPORTS:
            del shared.reports[next(iter(shared.reports))]
        shared.doc.set_reader(tab, card_id, report.url)
        if shared.session is not None:
            self._spawn(self._send_reader(shared, card_id))
        return card_id

    # -- starting and stopping ------------------------------------------------------------------------

    async def _answer_start(self, session: PeerSession) -> None:
        if not self.beamer.activity.active:
            session.send_quietly(SyncRefused(code=ErrorCode.INACTIVE, message=(
                f"{self.config.name} is inactive: nobody has used it for a while. On the PC, run "
                "`peerbeam activate` or click the peerbeam button in the browser.")))
            return
        try:
            await self.start_here(session)
        except PeerbeamError as exc:
            session.send_quietly(SyncRefused(code=exc.code, message=exc.message[:1000]))
            self.reporter.emit("sync_refused", name=session.name, code=str(exc.code), message=exc.message)

    async def start(self, to: str | None, *, url: str | None = None) -> dict[str, Any]:
        """``peerbeam sync start`` and the extension's "Mirror": this side owns the session."""
        return await self.start_here(self._pick(to), url=url)

    async def start_here(self, session: PeerSession, *, url: str | None = None) -> dict[str, Any]:
        tabs, active, report = await self._capture(url)
        shared = self._shared.get(session.peer_key)
        if shared is None or not shared.owner:
            if shared is not None:
                self._drop(shared, why="A new page-sync session replaces the old one.")
            shared = self._adopt(session.peer_key, new_transfer_id(), SyncDoc(), owner=True)
        doc = shared.doc
        state = doc.state()
        for key, tab_url, title, order in tabs:
            known = state["tabs"].get(key)
            if known is None:
                doc.open_tab(key, tab_url, title, order, "pc")
            elif known.get("url") != tab_url or known.get("title") != title:
                doc.navigate(key, tab_url, title, "pc")
        if state.get("active") != active:
            doc.set_active(active)
        shared.session = session
        session.send_quietly(SyncOpen(doc=shared.doc_id))
        self._connect(shared, session)
        card = self._set_page(shared, active, report)
        self.reporter.emit("sync_started", doc=shared.doc_id, name=session.name, by="us", tab=active, url=report.url)
        self._tell_extensions(now=True)
        reader = report.reader
        return {"doc": shared.doc_id, "name": session.name, "tab": active, "url": report.url, "title": report.title,
                "card": card, "blocks": len(reader.blocks) if reader else 0}

    async def _capture(self, url: str | None) -> tuple[list[tuple[str, str, str, float]], str, PageReport]:
        """The tabs to share and the active one's page: from the extension, or fetched by URL."""
        if url is not None:
            report = await report_from_url(url, self.beamer.limits, self.beamer.http, reader=True)
            # A tab key of docs/SYNC.md: "t<chrome tab id>" or 16 hex (the phone's sync_doc.js
            # accepts nothing else), here derived from the address.
            key = hashlib.sha256(report.url.encode()).hexdigest()[:16]
            return [(key, report.url, report.title or report.url, 0.0)], key, report
        links = self.beamer.extensions
        if not links:
            raise PeerbeamError(f"{self.config.name} cannot tell which page it shows: the peerbeam browser extension "
                                "is not connected there. Start with `peerbeam sync start URL` instead.",
                                code=ErrorCode.NO_PAGE)
        reply = await links[-1].request({"type": "sync.capture", "tab": None})
        page = reply.get("page")
        report = report_from_extension(page)
        if report.reader is None:
            # A tab the extension cannot script (no grant): fetch it as `send URL` does.
            with contextlib.suppress(PeerbeamError):
                report = await report_from_url(report.url, self.beamer.limits, self.beamer.http, reader=True)
        active = reply.get("tab_key")
        tabs = _tabs_from(reply.get("tabs"))
        if not isinstance(active, str) or active not in {key for key, *_ in tabs}:
            raise PeerbeamError("The browser extension reported no usable active tab.", code=ErrorCode.NO_PAGE)
        return tabs, active, report

    async def request_start(self, to: str | None) -> dict[str, Any]:
        """The phone side's "Follow my PC" (`peerbeam sync follow`): ask the PC to start."""
        session = self._pick(to)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[session.peer_key] = waiter
        try:
            session.link.send(SyncStart())
            doc_id = await asyncio.wait_for(waiter, START_TIMEOUT)
        except TimeoutError:
            raise PeerbeamError(f"{session.name} did not start page sync within {START_TIMEOUT:g} s.",
                                code=ErrorCode.CONNECT_TIMEOUT) from None
        finally:
            self._waiting.pop(session.peer_key, None)
        return {"doc": doc_id, "name": session.name}

    def stop(self, to: str | None) -> dict[str, Any]:
        shared = self._find(to)
        if shared.session is not None:
            shared.session.send_quietly(SyncStop(doc=shared.doc_id))
        self._drop(shared, why="Page sync ended here.")
        return {"doc": shared.doc_id}

    def _find(self, to: str | None) -> _Shared:
        if to is None and len(self._shared) == 1:
            return next(iter(self._shared.values()))
        if to is None and not self._shared:
            raise PeerbeamError("No page-sync session is open.", code=ErrorCode.NOT_SYNCING)
        shared = self._shared.get(self._pick(to).peer_key)
        if shared is None:
            raise PeerbeamError("No page-sync session is open with that device.", code=ErrorCode.NOT_SYNCING)
        return shared

    def show(self, to: str | None) -> dict[str, Any]:
        shared = self._find(to)
        readers = {card: {"url": r.url, "title": r.title, "blocks": [[b.k, b.t, b.src] for b in r.blocks],
                          "truncated": r.truncated} for card, r in shared.readers.items()}
        return {"doc": shared.doc_id, "owner": shared.owner, "connected": shared.link is not None,
                "state": shared.doc.state(), "readers": readers, "size": len(shared.doc.encode())}

    def apply(self, to: str | None, op: str, args: dict[str, Any], *, doc_id: str | None = None) -> None:
        """A user's operation (the CLI, the extension) on the shared document."""
        shared = self._find(to) if doc_id is None else self._by_doc(doc_id)
        if op not in USER_OPS:
            raise PeerbeamError(f"Unknown page-sync operation {op!r}.", code=ErrorCode.BAD_MESSAGE)
        if op in _WITH_BY:
            args = {**args, "by": "pc" if shared.owner else "phone"}
        try:
            getattr(shared.doc, op)(**args)
        except TypeError as exc:
            raise PeerbeamError(f"The page-sync operation {op} got the wrong arguments: {exc}.",
                                code=ErrorCode.BAD_MESSAGE) from None

    def _by_doc(self, doc_id: str) -> _Shared:
        for shared in self._shared.values():
            if shared.doc_id == doc_id:
                return shared
        raise PeerbeamError("That page-sync session is over.", code=ErrorCode.UNKNOWN_DOC)

    # -- the browser extension ---------------------------------------------------------------------------

    def _owned(self) -> _Shared | None:
        owned = [s for s in self._shared.values() if s.owner]
        return owned[-1] if owned else None

    def _tell_extensions(self, *, now: bool = False) -> None:
        """The newest state to the extension: at once, or at most every 50 ms."""
        if self._ext_timer is not None and not now:
            return
        wait = 0.0 if now else max(0.0, self._ext_sent_at + EXTENSION_INTERVAL - time.monotonic())
        if self._ext_timer is not None:
            self._ext_timer.cancel()
        self._ext_timer = asyncio.get_running_loop().call_later(wait, self._send_extension_state)

    def _send_extension_state(self) -> None:
        self._ext_timer = None
        self._ext_sent_at = time.monotonic()
        shared = self._owned()
        message = {"type": "sync.state", "doc": shared.doc_id if shared else None,
                   "state": shared.doc.state() if shared else None}
        for link in self.beamer.extensions:
            link.conn.send(message)

    def _on_extension_message(self, link: ExtensionLink, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "sync.begin":
            self.beamer.use()
            self._spawn(self._extension_begin(link, message.get("request_id")))
            return
        if kind == "sync.end":
            with contextlib.suppress(PeerbeamError):
                shared = self._owned()
                if shared is not None:
                    if shared.session is not None:
                        shared.session.send_quietly(SyncStop(doc=shared.doc_id))
                    self._drop(shared, why="Page sync ended in the browser.")
            return
        doc_id = message.get("doc")
        try:
            if not isinstance(doc_id, str):
                raise PeerbeamError("A page-sync message without its document.", code=ErrorCode.BAD_MESSAGE)
            shared = self._by_doc(doc_id)
            if kind == "sync.op":
                args = message.get("args")
                self.apply(None, str(message.get("op")), args if isinstance(args, dict) else {}, doc_id=doc_id)
            elif kind == "sync.page":
                self._extension_page(shared, message)
            else:
                raise PeerbeamError(f"Unknown message type {kind!r}.", code=ErrorCode.BAD_MESSAGE)
        except PeerbeamError as exc:
            link.conn.send({"type": "error", "code": str(exc.code), "message": exc.message})

    def _extension_page(self, shared: _Shared, message: dict[str, Any]) -> None:
        """The synced tab navigated (or its reader view changed): a new reader view."""
        tab = message.get("tab_key")
        known = shared.doc.state()["tabs"].get(tab) if isinstance(tab, str) else None
        if known is None or not isinstance(tab, str):
            raise PeerbeamError("A page for a tab that is not shared.", code=ErrorCode.BAD_MESSAGE)
        report = report_from_extension(message.get("page"))
        title = report.title or report.url  # as start_here names an untitled tab
        if known.get("url") != report.url or known.get("title") != title:
            shared.doc.navigate(tab, report.url, title, "pc")
        if report.reader is None:
            self._spawn(self._fetch_page(shared, tab, report.url))
        else:
            self._set_page(shared, tab, report)

    async def _fetch_page(self, shared: _Shared, tab: str, url: str) -> None:
        try:
            report = await report_from_url(url, self.beamer.limits, self.beamer.http, reader=True)
        except PeerbeamError as exc:
            logger.info("reader view of tab %s not fetched: %s", tab, exc.message)
            return
        if self._shared.get(shared.peer_key) is shared:
            self._set_page(shared, tab, report)

    async def _extension_begin(self, link: ExtensionLink, request_id: object) -> None:
        reply: dict[str, Any] = {"type": "sync.begin.result", "request_id": request_id}
        try:
            result = await self.start(None)
        except PeerbeamError as exc:
            reply.update(ok=False, code=str(exc.code), message=exc.message)
        else:
            reply.update(ok=True, **result)
        link.conn.send(reply)

    async def close(self) -> None:
        for shared in list(self._shared.values()):
            if shared.timer is not None:
                shared.timer.cancel()
                self._save(shared)
        if self._ext_timer is not None:
            self._ext_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _tabs_from(raw: object) -> list[tuple[str, str, str, float]]:
    """The extension's tab list, checked with the document's own shapes (sync_shapes.py): a
    tab the document would refuse is left out rather than failing the whole start."""
    tabs: list[tuple[str, str, str, float]] = []
    if not isinstance(raw, list):
        return tabs
    for item in raw[:MAX_TABS]:
        if not isinstance(item, dict):
            continue
        key, url, title, order = item.get("key"), item.get("url"), item.get("title"), item.get("order", 0)
        if (isinstance(key, str) and tab_key(key) and isinstance(url, str) and URL(url)
                and isinstance(order, (int, float)) and not isinstance(order, bool) and math.isfinite(order)):
            tabs.append((key, url, (title if isinstance(title, str) else "")[:1024] or url[:1024], float(order)))
    return tabs


async def control(syncer: Syncer, request: dict[str, Any]) -> dict[str, Any]:
    """The control socket's ``{"cmd": "sync", "action": ...}`` (``peerbeam sync ...``)."""
    action = request.get("action")
    to = request.get("to") if isinstance(request.get("to"), str) else None
    if action == "start":
        url = request.get("url")
        return {"ok": True, **await syncer.start(to, url=url if isinstance(url, str) else None)}
    if action == "follow":
        return {"ok": True, **await syncer.request_start(to)}
    if action == "stop":
        return {"ok": True, **syncer.stop(to)}
    if action == "show":
        return {"ok": True, **syncer.show(to)}
    if action == "op":
        args = request.get("args")
        if not isinstance(args, dict):
            raise PeerbeamError("A page-sync operation needs its arguments as a JSON object.",
                                code=ErrorCode.BAD_MESSAGE)
        syncer.apply(to, str(request.get("op")), args)
        return {"ok": True}
    raise PeerbeamError(f"Unknown page-sync action {action!r}.", code=ErrorCode.BAD_MESSAGE)
