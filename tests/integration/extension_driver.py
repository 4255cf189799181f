"""Drives Debian's Chromium with the peerbeam extension, inside a lab namespace.

Serves a directory of test pages over HTTP (aiohttp) on --listen, starts /usr/bin/chromium with
the unpacked extension and a fresh profile on that page, then obeys JSON commands on stdin,
one per line, and prints one JSON event per line:

    {"cmd": "beam"}                 -> {"event": "triggered"}  (the toolbar action ran)
    {"cmd": "results", "count": N}  -> {"event": "results", "results": [...], "connects": K,
                                        "started": T, "worker": TARGET_ID}
    {"cmd": "reload"}               -> {"event": "reloaded"}   (Playwright only; revokes activeTab)
    {"cmd": "eval_worker", "expr": E} -> {"event": "evaluated", "value": V}  (E in the extension's
                                        worker, e.g. "peerbeam.mirror(3)" or "peerbeam.sync.session";
                                        a promise is awaited)
    {"cmd": "eval_page", "expr": E}  -> {"event": "evaluated", "value": V}  (Playwright only; E in the
                                        test page's main world, e.g. a scroll, or a promise that
                                        waits for a data-peerbeam-* marker of sync_content.js)
    {"cmd": "quit"}

Headless Chromium has no toolbar to click. The action is triggered with CDP
`Extensions.triggerAction` on the page's *tab* target: Chromium then runs the extension's
action as for a click (ExtensionActionRunner), which is what grants activeTab — the extension
has no host permissions, so its executeScript works only through that grant. The command
exists on a browser-level session over --remote-debugging-pipe with
--enable-unsafe-extension-debugging.

Two ways to drive it (--via):
- `playwright` (default): Playwright's persistent context on executable_path=/usr/bin/chromium.
- `pipe`: the same CDP pipe, spoken directly. Playwright attaches a debugger to every service
  worker, and a worker with a debugger attached is never stopped for idleness (measured here:
  an extension worker with no work is still alive after 45 s under Playwright, gone at 30 s
  without it). The idle test must see the real lifecycle, so there the driver attaches to the
  worker only to read results, and detaches again.

Never `playwright install`: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-unsafe-extension-debugging",
]
LOADED_IMAGES = "[...document.images].map((i) => [i.getAttribute('src'), i.naturalWidth])"
# A worker target exists as soon as its thread starts, before its module's top level ran.
MODULE_RAN = "new Promise((done) => { const check = () => globalThis.peerbeam ? done() : setTimeout(check, 20); check(); })"
WORKER_STATE = "({connects: peerbeam.link.connects, started: peerbeam.startedAt, state: peerbeam.link.state})"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class CdpPipe:
    """CDP over --remote-debugging-pipe: Chromium reads fd 3 and writes fd 4, one JSON message
    per NUL-terminated record (content/browser/devtools/devtools_pipe_handler.cc)."""

    def __init__(self) -> None:
        self._ids = iter(range(1, 1 << 30))
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def start(self, argv: list[str]) -> None:
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()

        def at_3_and_4() -> None:  # in the child, before exec
            a, b = os.dup(to_chrome), os.dup(from_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = await asyncio.create_subprocess_exec(
            *argv, "--remote-debugging-pipe", pass_fds=(3, 4), preexec_fn=at_3_and_4,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self._in, "rb", 0))
        self._writer = os.fdopen(self._out, "wb", 0)
        self._reading = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            message = json.loads((await reader.readuntil(b"\0"))[:-1])
            waiter = self._calls.pop(message.get("id", -1), None)
            if waiter is None:
                await self.events.put(message)
            elif "error" in message:
                waiter.set_exception(RuntimeError(f"CDP error: {message['error']}"))
            else:
                waiter.set_result(message.get("result", {}))

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        call_id = next(self._ids)
        waiter = asyncio.get_running_loop().create_future()
        self._calls[call_id] = waiter
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._writer.write(json.dumps(message).encode() + b"\0")
        return await asyncio.wait_for(waiter, 60)

    async def close(self) -> None:
        self._reading.cancel()
        self._writer.close()
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


class PipeChromium:
    """Chromium over a bare CDP pipe; nothing stays attached to the extension's worker."""

    async def start(self, extension: str, profile: str, url: str) -> None:
        self.cdp = CdpPipe()
        await self.cdp.start([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                              f"--disable-extensions-except={extension}", f"--load-extension={extension}",
                              "about:blank"])
        await self.cdp.call("Target.setDiscoverTargets", {"discover": True})  # events, no attaching
        worker = await self._wait_target(lambda t: t["type"] == "service_worker"
                                         and t["url"].startswith("chrome-extension://"))
        self.extension_id = worker["url"].split("/")[2]
        page = await self._wait_target(lambda t: t["type"] == "page")
        session = (await self.cdp.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}))["sessionId"]
        await self.cdp.call("Page.enable", session=session)
        await self.cdp.call("Page.navigate", {"url": url}, session)
        await self._wait_event("Page.loadEventFired", session)
        self.loaded = await self._evaluate(session, LOADED_IMAGES)
        await self.cdp.call("Target.detachFromTarget", {"sessionId": session})
        tabs = (await self.cdp.call("Target.getTargets", {"filter": [{"type": "tab"}]}))["targetInfos"]
        (self.tab_id,) = [t["targetId"] for t in tabs if t["url"] == url]

    async def _wait_event(self, method: str, session: str) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.cdp.events.get(), 30)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    async def _wait_target(self, wanted: Any) -> dict[str, Any]:
        for info in (await self.cdp.call("Target.getTargets"))["targetInfos"]:
            if wanted(info):
                return info
        while True:
            event = await asyncio.wait_for(self.cdp.events.get(), 30)
            if event.get("method") in ("Target.targetCreated", "Target.targetInfoChanged"):
                info = event["params"]["targetInfo"]
                if wanted(info):
                    return info

    async def _evaluate(self, session: str, expression: str) -> Any:
        reply = await self.cdp.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                         "returnByValue": True}, session)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"evaluate failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def trigger(self) -> None:
        await self.cdp.call("Extensions.triggerAction", {"id": self.extension_id, "targetId": self.tab_id})

    async def in_worker(self, expression: str) -> tuple[Any, str]:
        """Evaluate in the extension's worker (starting it if it was stopped), then detach."""
        targets = (await self.cdp.call("Target.getTargets"))["targetInfos"]
        workers = [t for t in targets if t["type"] == "service_worker" and self.extension_id in t["url"]]
        if not workers:
            raise RuntimeError("the extension's service worker is not running")
        target = workers[0]["targetId"]
        session = (await self.cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        try:
            await self._evaluate(session, MODULE_RAN)
            return await self._evaluate(session, expression), target
        finally:
            await self.cdp.call("Target.detachFromTarget", {"sessionId": session})

    async def close(self) -> None:
        await self.cdp.close()


class PlaywrightChromium:
    """Chromium through Playwright (its persistent context keeps our profile dir)."""

    async def start(self, extension: str, profile: str, url: str) -> None:
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self.context = await self._pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True,
            # Playwright adds --disable-extensions by default; the extension is the point here.
            ignore_default_args=["--disable-extensions"],
            args=[*FLAGS, f"--disable-extensions-except={extension}", f"--load-extension={extension}"])
        worker = await self._worker()
        self.extension_id = worker.url.split("/")[2]
        browser = self.context.browser
        assert browser is not None
        self.cdp = await browser.new_browser_cdp_session()
        page = self.context.pages[0] if self.context.pages else await self.context.new_page()
        await page.goto(url, wait_until="load")
        self.loaded = await page.evaluate(f"() => {LOADED_IMAGES}")
        # triggerAction wants the *tab* target, not the page target inside it.
        tabs = (await self.cdp.send("Target.getTargets", {"filter": [{"type": "tab"}]}))["targetInfos"]
        (self.tab_id,) = [t["targetId"] for t in tabs if t["url"] == page.url]

    async def _worker(self) -> Any:
        for worker in self.context.service_workers:
            if worker.url.startswith("chrome-extension://"):
                return worker
        return await self.context.wait_for_event(
            "serviceworker", predicate=lambda w: w.url.startswith("chrome-extension://"), timeout=30_000)

    async def trigger(self) -> None:
        await self.cdp.send("Extensions.triggerAction", {"id": self.extension_id, "targetId": self.tab_id})

    async def reload(self) -> None:
        """A navigation: Chromium revokes the tab's activeTab grant."""
        await self.context.pages[0].reload(wait_until="load")

    async def in_worker(self, expression: str) -> tuple[Any, str]:
        worker = await self._worker()
        return await worker.evaluate(expression), worker.url

    async def close(self) -> None:
        await self.context.close()
        await self._pw.stop()


async def run(args: argparse.Namespace) -> None:
    app = web.Application()
    app.router.add_static("/", Path(args.site), show_index=False)
    runner = web.AppRunner(app)
    await runner.setup()
    host, port = args.listen.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    commands = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    url = f"http://{args.listen}/{args.page}"
    chromium = PipeChromium() if args.via == "pipe" else PlaywrightChromium()
    try:
        await chromium.start(str(Path(args.extension).resolve()), args.profile, url)
        emit("ready", extension_id=chromium.extension_id, url=url, loaded=chromium.loaded)
        while line := await commands.readline():
            command = json.loads(line)
            if command["cmd"] == "beam":
                await chromium.trigger()
                emit("triggered")
            elif command["cmd"] == "results":
                results, _ = await chromium.in_worker(f"peerbeam.waitForResults({int(command['count'])})")
                state, worker = await chromium.in_worker(WORKER_STATE)
                emit("results", results=results, worker=worker, **state)
            elif command["cmd"] == "reload" and isinstance(chromium, PlaywrightChromium):
                await chromium.reload()
                emit("reloaded")
            elif command["cmd"] == "eval_worker":
                value, _ = await chromium.in_worker(str(command["expr"]))
                emit("evaluated", value=value)
            elif command["cmd"] == "eval_page" and isinstance(chromium, PlaywrightChromium):
                emit("evaluated", value=await chromium.context.pages[0].evaluate(str(command["expr"])))
            elif command["cmd"] == "quit":
                break
    finally:
        await chromium.close()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extension", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--site", required=True)
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT for the test pages")
    parser.add_argument("--page", default="index.html")
    parser.add_argument("--via", choices=("playwright", "pipe"), default="playwright")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
