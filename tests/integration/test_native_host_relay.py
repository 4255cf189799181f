"""The native host process between a browser and the agent's control socket.

The host runs as Chrome runs it (`peerbeam --home H extension-host ORIGIN`, stdin/stdout pipes
carrying Chrome's framing); this test plays the browser on those pipes. The agent's side is the
real ControlServer with a scripted extension handler, so that the test can make the agent vanish,
come back, and send what a broken agent would. Unix sockets only: no network, no namespace.
The whole chain with Chromium and the real agent is test_extension.py.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from pathlib import Path
from typing import Any, Self

from peer_agent.control import Conn, ControlServer
from peer_agent.errors import PeerbeamError
from peer_agent.native_host import EXTENSION_ID, MAX_FROM_BROWSER, MAX_TO_BROWSER
from signaling.schema import ErrorCode
from tests.lab import REPO_ROOT

ORIGIN = f"chrome-extension://{EXTENSION_ID}/"
WAIT = 15.0  # above the host's longest retry pause (5 s)


class Browser:
    """The host process, seen from Chrome's side of its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, home: Path, origin: str = ORIGIN) -> Browser:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "peer_agent", "--home", str(home), "extension-host", origin,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT)
        return cls(proc)

    async def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        await self.send_raw(struct.pack("<I", len(payload)) + payload)

    async def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        header = await asyncio.wait_for(self.proc.stdout.readexactly(4), WAIT)
        (size,) = struct.unpack("<I", header)
        assert size <= MAX_TO_BROWSER
        message: dict[str, Any] = json.loads(await self.proc.stdout.readexactly(size))
        return message

    async def close(self) -> int:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), WAIT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()


class Agent:
    """The agent's control socket with a scripted `extension` command."""

    def __init__(self, home: Path) -> None:
        self.server = ControlServer(home / "control.sock", self._handle)
        self.hellos: list[dict[str, Any]] = []
        self.received: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.conns: asyncio.Queue[Conn] = asyncio.Queue()
        self.kick = asyncio.Event()

    async def _handle(self, request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        self.hellos.append(request)
        conn.send({"ok": True, "name": "Desk PC", "active": True, "devices": [{"name": "Test Phone", "path": {}}]})
        await self.conns.put(conn)
        kicked = asyncio.ensure_future(self.kick.wait())
        try:
            while True:
                message = asyncio.ensure_future(conn.recv())
                await asyncio.wait([message, kicked], return_when=asyncio.FIRST_COMPLETED)
                if not message.done():
                    message.cancel()
                    break
                await self.received.put(message.result())
                if message.result() is None:
                    break
        finally:
            kicked.cancel()
        return {"ok": True}

    async def next(self) -> dict[str, Any] | None:
        return await asyncio.wait_for(self.received.get(), WAIT)

    async def __aenter__(self) -> Self:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.kick.set()
        await self.server.close()


async def expect_type(browser: Browser, kind: str) -> dict[str, Any]:
    """The next frame of type `kind`, skipping the agent's closing {"ok": true} and statuses."""
    while True:
        message = await browser.recv()
        if message.get("type") == kind:
            return message


async def test_without_the_agent_the_extension_is_told_then_the_link_comes_up(tmp_path):
    browser = await Browser.start(tmp_path)
    try:
        status = await browser.recv()
        assert status == {"type": "status", "ok": False, "code": "peer_gone", "message": status["message"]}
        assert "not running" in status["message"]
        await browser.send({"type": "ping"})
        assert (await browser.recv())["code"] == "peer_gone"  # a ping is answered either way
        await browser.send({"type": "beam", "request_id": 1, "to": None, "page": {}})
        failed = await browser.recv()
        assert failed == {"type": "beam.result", "request_id": 1, "ok": False, "code": "peer_gone",
                          "message": status["message"]}

        async with Agent(tmp_path) as agent:
            # A request wakes the host's retry loop: no waiting out the backoff.
            beam = {"type": "beam", "request_id": 2, "to": None,
                    "page": {"url": "http://198.51.100.1/", "title": "T", "images": [], "screenshot": None}}
            await browser.send(beam)
            hello = await browser.recv()
            assert hello == {"type": "status", "ok": True, "name": "Desk PC", "active": True,
                             "devices": [{"name": "Test Phone", "path": {}}]}
            assert agent.hellos == [{"cmd": "extension", "origin": ORIGIN, "version": 1}]
            assert await agent.next() == beam
            conn = await agent.conns.get()
            conn.send({"type": "beam.result", "request_id": 2, "ok": True, "name": "Test Phone",
                       "card": "00112233aabbccdd", "thumbnails": 0})
            assert (await browser.recv())["request_id"] == 2
        assert await browser.close() == 0
    finally:
        await browser.close()


async def test_lines_flow_both_ways_and_oversized_or_broken_messages_are_refused(tmp_path):
    async with Agent(tmp_path) as agent:
        browser = await Browser.start(tmp_path)
        try:
            assert (await browser.recv())["ok"] is True
            conn = await agent.conns.get()

            conn.send({"type": "capture", "request_id": 5})
            assert await browser.recv() == {"type": "capture", "request_id": 5}
            answer = {"type": "capture.result", "request_id": 5, "ok": True,
                      "page": {"url": "https://example.org/ü", "title": "Ünïcode ☕", "images": [], "screenshot": None}}
            await browser.send(answer)
            assert await agent.next() == answer

            # Agent -> browser over Chrome's 1 MB: dropped, and the next line still arrives.
            conn.send({"type": "status", "active": True, "devices": [], "pad": "x" * MAX_TO_BROWSER})
            conn.send({"type": "status", "active": False, "devices": []})
            assert await browser.recv() == {"type": "status", "active": False, "devices": []}

            # Browser -> agent over 8 MiB: refused without reading it into memory, in step after.
            await browser.send_raw(struct.pack("<I", MAX_FROM_BROWSER + 1) + b" " * (MAX_FROM_BROWSER + 1))
            refused = await browser.recv()
            assert refused["type"] == "error" and refused["code"] == "frame_too_large"
            for bad, code in ((b"{not json", "bad_json"), (b"[1,2]", "bad_message")):
                await browser.send_raw(struct.pack("<I", len(bad)) + bad)
                assert (await browser.recv())["code"] == code
            pretty = json.dumps({"type": "ping", "note": "two\nlines"}, indent=2).encode()
            await browser.send_raw(struct.pack("<I", len(pretty)) + pretty)
            assert await agent.next() == {"type": "ping", "note": "two\nlines"}  # nothing bad got through

            assert await browser.close() == 0
            assert await agent.next() is None  # the agent sees the extension go
        finally:
            await browser.close()


async def test_when_the_agent_goes_pending_requests_fail_and_the_host_reconnects(tmp_path):
    browser = await Browser.start(tmp_path)
    try:
        async with Agent(tmp_path) as agent:
            await browser.send({"type": "beam", "request_id": 7, "to": None, "page": {}})
            assert (await browser.recv())["ok"] is True  # the hello status
            assert (await agent.next())["request_id"] == 7
        # The agent stopped before it answered.
        failed = await expect_type(browser, "beam.result")
        assert failed["request_id"] == 7 and failed["ok"] is False and failed["code"] == "peer_gone"
        assert (await expect_type(browser, "status"))["code"] == "peer_gone"

        async with Agent(tmp_path) as again:  # a new agent on the same socket: found on retry
            status = await expect_type(browser, "status")
            assert status["ok"] is True and status["name"] == "Desk PC"
            await browser.send({"type": "ping"})
            assert await again.next() == {"type": "ping"}
    finally:
        await browser.close()


async def test_a_caller_with_another_origin_is_refused(tmp_path):
    async with Agent(tmp_path) as agent:
        browser = await Browser.start(tmp_path, origin=f"chrome-extension://{'a' * 32}/")
        assert await asyncio.wait_for(browser.proc.wait(), WAIT) == 1
        assert "refused" in await browser.stderr()
        assert agent.hellos == []


async def test_an_agent_that_refuses_the_link_is_shown_with_its_reason(tmp_path):
    async def refuse(request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        raise PeerbeamError("Unknown control command 'extension'.", code=ErrorCode.BAD_MESSAGE)

    server = ControlServer(tmp_path / "control.sock", refuse)
    await server.start()
    browser = await Browser.start(tmp_path)
    try:
        status = await browser.recv()
        assert status == {"type": "status", "ok": False, "code": "bad_message",
                          "message": "Unknown control command 'extension'."}
        await browser.send({"type": "beam", "request_id": 1, "to": None, "page": {}})
        assert (await expect_type(browser, "beam.result"))["code"] == "peer_gone"
    finally:
        await browser.close()
        await server.close()
