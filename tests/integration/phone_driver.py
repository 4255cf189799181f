"""Drives Debian's Chromium as a phone, inside a lab namespace, for test_phone_app.py.

Starts /usr/bin/chromium through Playwright (a persistent context on a fresh profile dir, so
IndexedDB survives reloads within a test) with a phone's viewport and touch, then obeys JSON
commands on stdin, one per line. Each command is answered, in order, by exactly one
{"event": "done", "cmd": ..., "ok": true, ...} or {"event": "done", "cmd": ..., "ok": false,
"message": ...}:

    {"cmd": "goto", "url": U}                    -> url (after the page's load event)
    {"cmd": "screen", "name": N, "timeout": S}   -> the screen's state (SCREEN_STATE), once shown
    {"cmd": "tap", "selector": CSS}              -> a touch tap
    {"cmd": "fill", "selector": CSS, "text": T}
    {"cmd": "wait", "js": EXPR, "timeout": S}    -> value: EXPR's first truthy value
    {"cmd": "eval", "js": EXPR}                  -> value
    {"cmd": "shot", "path": P}                   -> a screenshot of the viewport at P
    {"cmd": "reload"}                            -> url
    {"cmd": "files", "selector": CSS, "paths": [P]}  -> picks files in an <input type=file>
    {"cmd": "download", "selector": CSS}         -> taps a download link: name, size, sha256 of what was saved
    {"cmd": "cdp", "method": M, "params": {...}} -> result of a Chrome DevTools Protocol call on the page
    {"cmd": "quit"}

The page's console lines come out as {"event": "console", ...}: they land in a failing test's
output.
Never `playwright install`: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from typing import Any

from playwright.async_api import async_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# What the tests read from a screen: its name, what it says, the status bar, the address.
SCREEN_STATE = """() => ({
  name: document.body.dataset.screen,
  failure: document.body.dataset.failure ?? null,
  state: document.body.dataset.state,
  text: document.querySelector('main').innerText,
  status: document.getElementById('status').hidden ? null : document.getElementById('status').innerText,
  path: document.getElementById('path')?.dataset.kind ?? null,
  url: location.href,
})"""


_CDP: dict[Any, Any] = {}


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run(args: argparse.Namespace) -> None:
    commands = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            args.profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
            user_agent=("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/156.0.0.0 Mobile Safari/537.36"))
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("console", lambda m: emit("console", type=m.type, text=m.text))
        page.on("pageerror", lambda e: emit("console", type="pageerror", text=str(e)))
        emit("ready")
        try:
            while line := await commands.readline():
                command = json.loads(line)
                cmd = command["cmd"]
                if cmd == "quit":
                    break
                try:
                    result = await obey(page, command)
                except Exception as exc:  # reported to the test, which decides
                    emit("done", cmd=cmd, ok=False, message=f"{type(exc).__name__}: {exc}")
                else:
                    emit("done", cmd=cmd, ok=True, **result)
        finally:
            await context.close()


async def obey(page: Any, command: dict[str, Any]) -> dict[str, Any]:
    cmd = command["cmd"]
    timeout_ms = float(command.get("timeout", 30)) * 1000
    if cmd == "goto":
        await page.goto(command["url"], wait_until="load")
        return {"url": page.url}
    if cmd == "reload":
        await page.reload(wait_until="load")
        return {"url": page.url}
    if cmd == "screen":
        await page.wait_for_function("(name) => document.body.dataset.screen === name", arg=command["name"],
                                     timeout=timeout_ms)
        return dict(await page.evaluate(SCREEN_STATE))
    if cmd == "tap":
        await page.tap(command["selector"], timeout=timeout_ms)
        return {}
    if cmd == "fill":
        await page.fill(command["selector"], command["text"], timeout=timeout_ms)
        return {}
    if cmd == "wait":
        # As a function, not an expression: Playwright polls an expression string with eval(),
        # which the app's CSP (no 'unsafe-eval') refuses.
        handle = await page.wait_for_function(f"() => ({command['js']})", timeout=timeout_ms)
        return {"value": await handle.json_value()}
    if cmd == "eval":
        return {"value": await page.evaluate(command["js"])}
    if cmd == "files":
        await page.set_input_files(command["selector"], command["paths"], timeout=timeout_ms)
        return {}
    if cmd == "download":
        async with page.expect_download(timeout=timeout_ms) as info:
            await page.tap(command["selector"], timeout=timeout_ms)
        download = await info.value
        path = await download.path()
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as saved:
            while block := saved.read(1 << 20):
                digest.update(block)
                size += len(block)
        return {"name": download.suggested_filename, "size": size, "sha256": digest.hexdigest()}
    if cmd == "cdp":
        # One session for the page's life: overrides (sensors) last only as long as it does.
        if page not in _CDP:
            _CDP[page] = await page.context.new_cdp_session(page)
        return {"value": await _CDP[page].send(command["method"], command.get("params", {}))}
    if cmd == "shot":
        await page.screenshot(path=command["path"])
        return {"path": command["path"]}
    raise ValueError(f"unknown command {cmd!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", required=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
