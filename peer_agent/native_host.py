"""The native messaging host: the browser extension's way to the running agent.

Chrome starts ``peerbeam extension-host chrome-extension://ID/`` through a launcher and speaks
its native messaging framing on our stdin/stdout: a 4-byte length in native byte order
(little-endian on every platform we run on) and that many bytes of UTF-8 JSON
(https://developer.chrome.com/docs/extensions/develop/concepts/native-messaging). We relay
each message as one line to the agent's control socket and each line back as one frame
(the contract: .notes/EXTENSION_LINK.md). Nothing else reads stdout: a stray print would
corrupt the framing, so logs go to stderr, which Chrome passes to its own.

Framing and the origin check are pure; `relay` and `run_host` are the thin asyncio shell.
Writing the launcher and Chrome's host manifest is native_install.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signaling.schema import ErrorCode

from .errors import PeerbeamError

logger = logging.getLogger(__name__)

HOST_NAME = "org.peerbeam.agent"
# The id Chrome derives from the `key` in browser_client/extension/manifest.json
# (tests/unit/test_native_host.py recomputes it from the manifest).
EXTENSION_ID = "iclcciocnhkjfigkjgokpjcindniackh"
PROTOCOL_VERSION = 1
MiB = 1024 * 1024
# Chrome refuses host -> extension messages over 1 MB and closes the port; we stop at 1 MiB - 1
# byte of JSON. Extension -> host: a visible-tab JPEG as a data: URL fits in 8 MiB.
MAX_TO_BROWSER = MiB
MAX_FROM_BROWSER = 8 * MiB
_HEADER = struct.Struct("<I")
_RETRY_MIN, _RETRY_MAX = 0.5, 5.0
_HELLO_TIMEOUT = 10.0
_AGENT_GONE = "peerbeam agent is not running on this computer. Start it with `peerbeam agent`."


class NativeHostError(PeerbeamError):
    """A message between the browser extension and peerbeam was refused."""

    code = ErrorCode.BAD_MESSAGE


# -- framing (pure) ------------------------------------------------------------------------


def encode_frame(message: dict[str, Any]) -> bytes:
    """One host -> Chrome frame; refuses what Chrome would refuse (> 1 MiB)."""
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return frame_bytes(payload)


def frame_bytes(payload: bytes) -> bytes:
    if len(payload) > MAX_TO_BROWSER:
        raise NativeHostError(f"A message for the browser is {len(payload)} bytes; Chrome takes at most "
                              f"{MAX_TO_BROWSER}.", code=ErrorCode.FRAME_TOO_LARGE)
    return _HEADER.pack(len(payload)) + payload


@dataclass(frozen=True)
class FrameReceived:
    payload: bytes


@dataclass(frozen=True)
class FrameRefused:
    """A frame over the cap: its bytes were skipped, unread, and the stream stays in step."""

    size: int


FrameEvent = FrameReceived | FrameRefused


class FrameReader:
    """Chrome -> host frames out of a byte stream, sans I/O (feed bytes, get events)."""

    def __init__(self, cap: int = MAX_FROM_BROWSER) -> None:
        self.cap = cap
        self._buffer = bytearray()
        self._need: int | None = None  # body length once the header is read
        self._skip = 0  # bytes of an oversized body still to drop

    def feed(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        view = memoryview(data)
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                continue
            want = _HEADER.size if self._need is None else self._need
            take = min(want - len(self._buffer), len(view))
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < want:
                break
            if self._need is None:
                (size,) = _HEADER.unpack(self._buffer)
                self._buffer.clear()
                if size > self.cap:
                    events.append(FrameRefused(size))
                    self._skip = size
                elif size == 0:
                    events.append(FrameReceived(b""))
                else:
                    self._need = size
            else:
                events.append(FrameReceived(bytes(self._buffer)))
                self._buffer.clear()
                self._need = None
        return events

    @property
    def idle(self) -> bool:
        """True between frames: an EOF here is a clean close, elsewhere a truncated frame."""
        return self._need is None and not self._buffer and not self._skip


def parse_object(payload: bytes) -> dict[str, Any]:
    """A JSON object, or NativeHostError saying what is wrong with it (never the payload)."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NativeHostError(f"Not JSON ({type(exc).__name__}).", code=ErrorCode.BAD_JSON) from None
    if not isinstance(value, dict):
        raise NativeHostError(f"A message must be a JSON object, not {type(value).__name__}.")
    return value


def as_line(payload: bytes, message: dict[str, Any]) -> bytes:
    """The control-socket line for a browser message: its own bytes when they hold no line
    break (Chrome writes compact JSON), else re-encoded compactly."""
    if b"\n" in payload or b"\r" in payload:
        payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return payload + b"\n"


def origin_of(extension_id: str) -> str:
    return f"chrome-extension://{extension_id}/"


def origin_allowed(origin: str | None, extension_ids: Iterable[str]) -> bool:
    """Chrome passes the caller's origin as the first argument; only exact matches pass.
    Chrome checks `allowed_origins` itself: this is the second lock, for other launchers."""
    return origin is not None and origin in {origin_of(i) for i in extension_ids}


# -- the relay (asyncio shell) -------------------------------------------------------------


async def _stdio() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Our stdin/stdout as asyncio streams (Chrome gives us pipes)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line of at most the stream's limit, or None at EOF. A longer line is dropped
    whole (logged) and reading goes on with the one after it."""
    dropping = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as exc:
            dropping = True
            await reader.readexactly(max(exc.consumed, 1))
            continue
        if not dropping:
            return line
        logger.error("dropped a message from the agent: over %d bytes, more than Chrome accepts",
                     MAX_TO_BROWSER)
        dropping = False


class _Relay:
    """Browser frames to agent lines and back, with answers of its own while the agent is away."""

    def __init__(self, control_path: Path, origin: str, browser: asyncio.StreamWriter) -> None:
        self.control_path = control_path
        self.origin = origin
        self._browser = browser
        self._agent: asyncio.StreamWriter | None = None
        # (type, request_id) of requests the agent has not answered: failed for the extension
        # when the agent goes, so that no beam waits for its timeout.
        self._pending: set[tuple[str, Any]] = set()
        self._told: str | None = None  # the failure code last shown; retries do not repeat it
        # A request while the agent is away wakes the retry loop and waits for one attempt, so a
        # click right after the host (or the agent) started is not answered "not running".
        self._wake = asyncio.Event()
        self._attempts = 0
        self._attempted = asyncio.Condition()

    async def tell_browser(self, message: dict[str, Any]) -> None:
        self._browser.write(encode_frame(message))
        await self._browser.drain()

    async def _tell_gone(self, code: str = ErrorCode.PEER_GONE, message: str = _AGENT_GONE,
                         again: bool = False) -> None:
        if code != self._told or again:
            self._told = code
            await self.tell_browser({"type": "status", "ok": False, "code": code, "message": message})

    async def from_browser(self, payload: bytes) -> None:
        try:
            message = parse_object(payload)
        except NativeHostError as exc:
            logger.error("refused a message from the browser extension: %s", exc.message)
            await self.tell_browser({"type": "error", "ok": False, "code": exc.code, "message": exc.message})
            return
        kind, request_id = message.get("type"), message.get("request_id")
        is_request = (isinstance(kind, str) and isinstance(request_id, (int, str))
                      and not kind.endswith(".result"))
        if self._agent is None and is_request:
            await self._one_more_attempt()
        if self._agent is not None:
            if is_request:
                self._pending.add((str(kind), request_id))
            try:
                self._agent.write(as_line(payload, message))
                await self._agent.drain()
            except ConnectionError:
                pass  # the agent went: agent_loop sees the EOF and fails what is pending
        elif is_request:
            await self.tell_browser({"type": f"{kind}.result", "request_id": request_id, "ok": False,
                                     "code": ErrorCode.PEER_GONE, "message": _AGENT_GONE})
        elif kind == "ping":
            await self._tell_gone(again=True)  # the extension's ping gets an answer either way

    async def _one_more_attempt(self) -> None:
        seen = self._attempts
        self._wake.set()
        async with self._attempted:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait_for(lambda: self._attempts > seen),
                                       _HELLO_TIMEOUT + 1)

    async def _attempt_done(self) -> None:
        async with self._attempted:
            self._attempts += 1
            self._attempted.notify_all()

    async def agent_loop(self) -> None:
        """Keep a connection to the agent: hello, relay, and after a drop try again."""
        delay = _RETRY_MIN
        while True:
            self._wake.clear()
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.control_path),
                                                                    limit=MAX_TO_BROWSER)
            except OSError:
                await self._attempt_done()
                await self._tell_gone()
            else:
                welcomed = False
                try:
                    welcomed = await self._hello(reader, writer)
                    await self._attempt_done()
                    if welcomed:
                        delay = _RETRY_MIN
                        await self._relay_agent(reader)
                finally:
                    self._agent = None
                    writer.close()
                if welcomed:  # (a refused hello has told the extension why already)
                    await self._fail_pending()
                    await self._tell_gone()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, _RETRY_MAX)

    async def _hello(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        hello = {"cmd": "extension", "origin": self.origin, "version": PROTOCOL_VERSION}
        try:
            writer.write(json.dumps(hello).encode() + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(_read_line(reader), _HELLO_TIMEOUT)
            reply = parse_object(line or b"")
        except (OSError, TimeoutError, NativeHostError) as exc:
            logger.warning("the agent did not take the extension link: %s", exc)
            await self._tell_gone()
            return False
        if reply.get("ok") is not True:
            code, text = str(reply.get("code", ErrorCode.INTERNAL)), str(reply.get("message", ""))
            logger.warning("the agent refused the extension link: %s %s", code, text)
            await self._tell_gone(code, text or _AGENT_GONE)
            return False
        self._agent = writer
        self._told = None
        # The hello answer (agent name, active, devices) is the extension's first status.
        await self.tell_browser({**reply, "type": "status"})
        return True

    async def _relay_agent(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await _read_line(reader)
            except ConnectionError:
                line = None  # a reset is the agent going, like an EOF (browser errors propagate)
            if line is None:
                return
            payload = line.rstrip(b"\r\n")
            try:
                message = parse_object(payload)
                frame = frame_bytes(payload)
            except NativeHostError as exc:
                logger.error("dropped a message from the agent: %s", exc.message)
                continue
            kind, request_id = message.get("type"), message.get("request_id")
            if isinstance(kind, str) and kind.endswith(".result") and isinstance(request_id, (int, str)):
                self._pending.discard((kind.removesuffix(".result"), request_id))
            self._browser.write(frame)
            await self._browser.drain()

    async def _fail_pending(self) -> None:
        pending, self._pending = self._pending, set()
        for kind, request_id in sorted(pending, key=repr):
            await self.tell_browser({"type": f"{kind}.result", "request_id": request_id, "ok": False,
                                     "code": ErrorCode.PEER_GONE,
                                     "message": "The peerbeam agent stopped before it answered."})

    async def browser_loop(self, browser_in: asyncio.StreamReader) -> None:
        """Until the browser closes our stdin (it disconnected the port or is quitting)."""
        frames = FrameReader()
        while data := await browser_in.read(64 * 1024):
            for event in frames.feed(data):
                if isinstance(event, FrameReceived):
                    await self.from_browser(event.payload)
                    continue
                logger.error("refused a %d-byte message from the browser extension (at most %d)",
                             event.size, MAX_FROM_BROWSER)
                await self.tell_browser({"type": "error", "ok": False, "code": ErrorCode.FRAME_TOO_LARGE,
                                         "message": f"A message of {event.size} bytes is over peerbeam's "
                                                    f"{MAX_FROM_BROWSER}-byte cap."})
        if not frames.idle:
            logger.error("the browser closed the link in the middle of a message")


async def relay(control_path: Path, origin: str, browser_in: asyncio.StreamReader,
                browser_out: asyncio.StreamWriter) -> int:
    """Relay until the browser goes; the exit code for the process."""
    link = _Relay(control_path, origin, browser_out)
    tasks = [asyncio.create_task(link.browser_loop(browser_in)), asyncio.create_task(link.agent_loop())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            logger.error("the extension link failed", exc_info=exc)
            return 1
    return 0


async def run_host(home: Path, chrome_args: Sequence[str], extension_ids: Sequence[str]) -> int:
    """`peerbeam extension-host`: check who called, then relay stdin/stdout to the agent."""
    origin = chrome_args[0] if chrome_args else None
    if origin is None or not origin_allowed(origin, extension_ids):
        logger.error("refused: started for origin %r, installed for %s", origin,
                     ", ".join(origin_of(i) for i in extension_ids))
        return 1
    browser_in, browser_out = await _stdio()
    try:
        return await relay(home / "control.sock", origin, browser_in, browser_out)
    finally:
        browser_out.close()
