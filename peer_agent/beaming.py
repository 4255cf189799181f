"""Pages between devices: beaming the PC's page as a card, pulls, and the agent's activity.

A card is one ``page.push`` followed by one binary frame per thumbnail on the same ordered
channel (``page.build_card``); the receiver's ``CardAssembler`` claims those frames before the
file transfers see them. A phone may *pull* "the page the PC shows now": the agent asks the
browser extension (through its native host's control connection) for the active tab, builds
the card and answers with ``page.push {pull}`` — only while **active**. It goes inactive after
``idle_timeout`` without a local action (a beam, a send, `peerbeam activate`) and then answers
pulls with ``inactive``, so a phone cannot watch an unattended PC.

The agent fetches every image itself, including for intranet addresses: the one who picks the
page is always the PC's user (the extension's active tab, or `peerbeam send URL`); a phone can
only ask for "the current page", never name an address, so it cannot aim these fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from signaling.schema import ChannelMessage, ErrorCode, PagePull, PagePush, PageRefused

from .cards import (
    CardAssembler,
    CardEvent,
    CardFailed,
    CardReady,
    ThumbRefused,
    save_card,
    thumb_file_name,
)
from .config import NodeConfig
from .control import Conn
from .downloads import DownloadError
from .errors import PeerbeamError
from .frames import FrameError, decode_frame
from .images import ImageLimits
from .page import Card, build_card, report_from_extension, report_from_url
from .report import Reporter
from .session import PeerSession

logger = logging.getLogger(__name__)

CAPTURE_TIMEOUT = 10.0
PULL_TIMEOUT = 45.0
PAGES_FOLDER = "peerbeam pages"


class Activity:
    """Whether the agent answers pulls. Pure: ``now`` is passed in."""

    def __init__(self, idle_timeout: float, now: float) -> None:
        self.idle_timeout = idle_timeout
        self.last_use = now
        self.active = True

    def use(self, now: float) -> bool:
        """A local action by the PC's user; True when it woke an inactive agent."""
        woke = not self.active
        self.active = True
        self.last_use = now
        return woke

    def check(self, now: float) -> bool:
        """True exactly once: when the idle time has just run out."""
        if self.active and now - self.last_use >= self.idle_timeout:
            self.active = False
            return True
        return False


class ExtensionLink:
    """One connected browser extension (through its native host)."""

    def __init__(self, conn: Conn, origin: str) -> None:
        self.conn = conn
        self.origin = origin
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def capture(self) -> dict[str, Any]:
        """The active tab, as the extension reports it (the PAGE object)."""
        return await self.request({"type": "capture"})

    async def request(self, message: dict[str, Any], timeout: float = CAPTURE_TIMEOUT) -> dict[str, Any]:
        """Ask the extension; its ``<type>.result`` reply, or a PeerbeamError with its code."""
        request_id = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        self.conn.send({**message, "request_id": request_id})
        try:
            reply = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise PeerbeamError(f"The browser extension did not answer within {timeout:g} s.",
                                code=ErrorCode.NO_PAGE) from None
        finally:
            self._waiting.pop(request_id, None)
        if not reply.get("ok"):
            code = str(reply.get("code"))
            known = code in {member.value for member in ErrorCode}
            raise PeerbeamError(str(reply.get("message") or "The browser could not report its page.")[:500],
                                code=ErrorCode(code) if known else ErrorCode.NO_PAGE)
        return reply

    def resolve(self, message: dict[str, Any]) -> None:
        waiter = self._waiting.get(message.get("request_id"))  # type: ignore[arg-type]
        if waiter is not None and not waiter.done():
            waiter.set_result(message)


class Beamer:
    def __init__(self, *, config: NodeConfig, reporter: Reporter, pick: Callable[[str | None], PeerSession],
                 devices: Callable[[], list[dict[str, Any]]], limits: ImageLimits | None = None) -> None:
        self.config = config
        self.reporter = reporter
        self._pick = pick
        self._devices = devices
        self.limits = limits or ImageLimits()
        self.activity = Activity(config.idle_timeout, time.monotonic())
        self._extensions: list[ExtensionLink] = []
        self._assemblers: dict[int, CardAssembler] = {}  # id(session) ->
        self._pulls: dict[str, asyncio.Future[CardReady]] = {}
        self._answering: set[int] = set()  # id(session) with a pull being answered
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Page sync's part of the extension link (peer_agent/syncing.py installs these): the
        # messages of kind "sync.*", and a newly connected extension.
        self.on_sync_message: Callable[[ExtensionLink, dict[str, Any]], None] | None = None
        self.on_extension: Callable[[ExtensionLink], None] | None = None
        # A received card that is a synced tab's reader view: True when it was taken.
        self.on_reader_card: Callable[[PeerSession, CardReady], bool] | None = None
        self._spawn(self._watch_idle())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers={"User-Agent": "peerbeam"})
        return self._http

    # -- activity -------------------------------------------------------------------------------

    def use(self) -> bool:
        woke = self.activity.use(time.monotonic())
        if woke:
            self.reporter.emit("active", message="Active again: paired devices can pull the current page.")
            self.status_changed()
        return woke

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(self.config.idle_timeout / 4, 0.05)))
            if self.activity.check(time.monotonic()):
                self.reporter.emit("inactive", message=f"No use for {self.config.idle_timeout:g} s: pulls from "
                                                       "paired devices are refused until `peerbeam activate` or the "
                                                       "browser extension's button.")
                self.status_changed()

    def status_changed(self) -> None:
        status = {"type": "status", "active": self.activity.active, "devices": self._devices()}
        for link in self._extensions:
            link.conn.send(status)

    # -- sessions -------------------------------------------------------------------------------

    def attach(self, session: PeerSession) -> None:
        assembler = CardAssembler()
        self._assemblers[id(session)] = assembler

        def claim(data: bytes) -> bool:
            try:
                frame = decode_frame(data)
            except FrameError:
                return False
            if not assembler.owns(frame.transfer_id):
                return False
            self._on_card_events(session, assembler.receive_frame(frame, time.monotonic()))
            return True

        session.claim_frame = claim
        session.on_page = self._on_page

    def detach(self, session: PeerSession) -> None:
        assembler = self._assemblers.pop(id(session), None)
        if assembler is not None:
            self._on_card_events(session, assembler.interrupt_all())

    def _on_page(self, session: PeerSession, message: ChannelMessage) -> None:
        if isinstance(message, PagePush):
            assembler = self._assemblers.get(id(session))
            if assembler is not None:
                self._on_card_events(session, assembler.receive_push(message, time.monotonic()))
                self._spawn(self._expire_later(session, assembler))
        elif isinstance(message, PagePull):
            if id(session) in self._answering:
                session.send_quietly(PageRefused(pull=message.id, code=ErrorCode.RATE_LIMITED,
                                                 message="A pull is already being answered."))
                return
            self._answering.add(id(session))
            task = self._spawn(self._answer_pull(session, message))
            task.add_done_callback(lambda _: self._answering.discard(id(session)))
        elif isinstance(message, PageRefused):
            waiter = self._pulls.get(message.pull)
            if waiter is not None and not waiter.done():
                waiter.set_exception(PeerbeamError(f"{session.name}: {message.message}", code=message.code))
                waiter.exception()  # retrieved: pull() raises it

    async def _expire_later(self, session: PeerSession, assembler: CardAssembler) -> None:
        deadline = assembler.next_deadline()
        if deadline is not None:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
            self._on_card_events(session, assembler.expire(time.monotonic()))

    def _on_card_events(self, session: PeerSession, events: list[CardEvent]) -> None:
        for event in events:
            if isinstance(event, CardReady):
                if self.on_reader_card is not None and self.on_reader_card(session, event):
                    continue
                self._spawn(self._save(session, event))
            elif isinstance(event, CardFailed):
                self.reporter.emit("page_failed", name=session.name, card=event.card_id, code=str(event.code),
                                   message=event.message)
                pull = event.push.pull if event.push is not None else None
                waiter = self._pulls.get(pull) if pull else None
                if waiter is not None and not waiter.done():
                    waiter.set_exception(PeerbeamError(event.message, code=event.code))
                    waiter.exception()
            elif isinstance(event, ThumbRefused):
                logger.info("thumbnail frame refused: %s", event.code)

    async def _save(self, session: PeerSession, ready: CardReady) -> None:
        folder = self.config.downloads / PAGES_FOLDER
        try:
            saved = await asyncio.to_thread(save_card, folder, ready.push, ready.images)
        except DownloadError as exc:
            self.reporter.emit("error", code=str(exc.code), message=exc.message, name=session.name)
            return
        files = [thumb_file_name(n, t) for n, (t, _) in enumerate(ready.images, 1)]
        thumbs = [{"kind": t.kind, "width": t.width, "height": t.height, "natural_width": t.natural_width,
                   "natural_height": t.natural_height, "mime": t.mime, "size": t.size, "source": t.source,
                   "file": str(saved / file)} for (t, _), file in zip(ready.images, files)]
        self.reporter.emit("page", name=session.name, card=ready.push.id, url=ready.push.url, title=ready.push.title,
                           thumbs=thumbs, folder=str(saved), pull=ready.push.pull, dropped=len(ready.dropped))
        waiter = self._pulls.get(ready.push.pull) if ready.push.pull else None
        if waiter is not None and not waiter.done():
            waiter.set_result(ready)

    # -- sending cards --------------------------------------------------------------------------

    async def send_card(self, session: PeerSession, card: Card) -> None:
        """The push, then one frame per thumbnail (and the reader text), paced by the channel."""
        session.link.send(card.push)  # first: the receiver then owns the thumbnails' ids
        for frame in card.frames:
            session.link.send_frame(frame)
            await session.link.wait_writable()

    async def beam(self, page: object, to: str | None, *, pull: str | None = None) -> dict[str, Any]:
        """A page reported by the browser extension, to ``to`` (or the only connected device)."""
        session = self._pick(to)
        report = report_from_extension(page)
        return await self._beam_report(session, report, pull)

    async def send_url(self, url: str, to: str | None) -> dict[str, Any]:
        session = self._pick(to)
        report = await report_from_url(url, self.limits, self.http)
        return await self._beam_report(session, report, None)

    async def _beam_report(self, session: PeerSession, report: Any, pull: str | None) -> dict[str, Any]:
        started = time.monotonic()
        card = await build_card(report, self.limits, self.http, pull=pull)
        await self.send_card(session, card)
        result = {"name": session.name, "card": card.push.id, "url": card.push.url, "title": card.push.title,
                  "thumbnails": len(card.push.thumbs), "left_out": len(card.rejected),
                  "seconds": round(time.monotonic() - started, 3)}
        self.reporter.emit("beamed", **result)
        return result

    # -- pulls ------------------------------------------------------------------------------------

    async def _answer_pull(self, session: PeerSession, pull: PagePull) -> None:
        def refuse(code: ErrorCode, message: str) -> None:
            session.send_quietly(PageRefused(pull=pull.id, code=code, message=message[:1000]))
            self.reporter.emit("pull_refused", name=session.name, code=str(code), message=message)

        if not self.activity.active:
            refuse(ErrorCode.INACTIVE,
                   f"{self.config.name} is inactive: nobody has used it for a while. On the PC, run "
                   "`peerbeam activate` or click the peerbeam button in the browser.")
            return
        if not self._extensions:
            refuse(ErrorCode.NO_PAGE,
                   f"{self.config.name} cannot tell which page it shows: the peerbeam browser extension is not "
                   "connected there. Beam the page from the PC with `peerbeam send URL` instead.")
            return
        try:
            reply = await self._extensions[-1].capture()
            report = report_from_extension(reply.get("page"))
            if not report.candidates and report.screenshot is None:
                # A tab the user never clicked: the browser gives its address but not its DOM
                # (activeTab), so fetch the page as `peerbeam send URL` does.
                with contextlib.suppress(PeerbeamError):
                    report = await report_from_url(report.url, self.limits, self.http)
            card = await build_card(report, self.limits, self.http, pull=pull.id)
            await self.send_card(session, card)
        except PeerbeamError as exc:
            refuse(exc.code, exc.message)
            return
        self.reporter.emit("pulled", name=session.name, url=card.push.url, thumbnails=len(card.push.thumbs))

    async def pull(self, to: str | None) -> dict[str, Any]:
        """Ask the PC for the page it shows now; returns once the card is saved here."""
        session = self._pick(to)
        pull_id = secrets.token_urlsafe(9)
        waiter: asyncio.Future[CardReady] = asyncio.get_running_loop().create_future()
        self._pulls[pull_id] = waiter
        try:
            session.link.send(PagePull(id=pull_id))
            ready = await asyncio.wait_for(waiter, PULL_TIMEOUT)
        except TimeoutError:
            raise PeerbeamError(f"{session.name} did not answer the pull within {PULL_TIMEOUT:g} s.",
                                code=ErrorCode.CONNECT_TIMEOUT) from None
        finally:
            self._pulls.pop(pull_id, None)
        return {"name": session.name, "card": ready.push.id, "url": ready.push.url, "title": ready.push.title,
                "thumbnails": len(ready.images)}

    # -- the browser extension --------------------------------------------------------------------

    async def serve_extension(self, request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        origin = request.get("origin")
        if not isinstance(origin, str) or not origin.startswith("chrome-extension://"):
            raise PeerbeamError("Only the peerbeam browser extension may open this link.", code=ErrorCode.BAD_MESSAGE)
        link = ExtensionLink(conn, origin)
        self._extensions.append(link)
        self.reporter.emit("extension", connected=True, origin=origin)
        conn.send({"ok": True, "name": self.config.name, "active": self.activity.active, "devices": self._devices()})
        if self.on_extension is not None:
            self.on_extension(link)
        try:
            while (message := await conn.recv()) is not None:
                kind = message.get("type")
                if kind == "beam":
                    self._spawn(self._extension_beam(link, message))
                elif kind == "ping":
                    conn.send({"type": "pong", "active": self.activity.active, "devices": self._devices()})
                elif isinstance(kind, str) and kind.endswith(".result"):
                    link.resolve(message)
                elif isinstance(kind, str) and kind.startswith("sync.") and self.on_sync_message is not None:
                    self.on_sync_message(link, message)
                else:
                    conn.send({"type": "error", "code": "bad_message", "message": f"Unknown message type {kind!r}."})
        finally:
            self._extensions.remove(link)
            self.reporter.emit("extension", connected=False, origin=origin)
        return {"ok": True}

    @property
    def extensions(self) -> list[ExtensionLink]:
        """The connected browser extensions, the most recent last."""
        return list(self._extensions)

    async def _extension_beam(self, link: ExtensionLink, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": "beam.result", "request_id": message.get("request_id")}
        self.use()  # the user clicked the button: that is activity, and wakes an inactive agent
        to = message.get("to") if isinstance(message.get("to"), str) else None
        try:
            result = await self.beam(message.get("page"), to)
        except PeerbeamError as exc:
            reply.update(ok=False, code=str(exc.code), message=exc.message)
        else:
            reply.update(ok=True, **result)
        link.conn.send(reply)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()
