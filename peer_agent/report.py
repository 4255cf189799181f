"""What the user sees: rich lines for people, or one JSON event per line for scripts (--json)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Reporter(Protocol):
    def emit(self, event: str, **fields: Any) -> None: ...


class JsonReporter:
    """One JSON object per line on stdout, flushed at once, each with an ``event`` key."""

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "ts": round(time.time(), 3), **fields}
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        sys.stdout.flush()


def _describe_path(fields: dict[str, Any]) -> str:
    kind = {"lan": "LAN", "direct": "direct", "relay": "relay"}.get(str(fields.get("kind")), "?")
    rtt = fields.get("rtt_ms")
    rtt_text = f", {rtt:.1f} ms" if isinstance(rtt, (int, float)) else ""
    files = f"; files over the {fields['files_via']}" if fields.get("files_via") == "LAN fast path" else ""
    return (f"{kind} ({fields.get('transport', '?')}, {fields.get('local', '?')} ⇄ {fields.get('remote', '?')}"
            f"{rtt_text}){files}")


def _size(n: object) -> str:
    value = float(n) if isinstance(n, (int, float)) else 0.0
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


class _Bars:
    """One rich progress bar per running transfer (rate and time left), shown while any runs."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            TimeRemainingColumn(), console=console, transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def update(self, f: dict[str, Any]) -> None:
        tid = str(f.get("id"))
        if tid not in self._tasks:
            if not self._tasks:
                self._progress.start()
            arrow = "→" if f.get("direction") == "out" else "←"
            label = f"{arrow} {escape(str(f.get('file', '')))} {'to' if arrow == '→' else 'from'} {escape(str(f.get('name', '')))}"
            if f.get("via"):  # which path carries it: "LAN fast path" or "data channel"
                label += f" [dim]({escape(str(f['via']))})[/dim]"
            self._tasks[tid] = self._progress.add_task(label, total=f.get("size") or None)
        self._progress.update(self._tasks[tid], completed=f.get("done", 0))

    def finish(self, tid: str) -> None:
        task = self._tasks.pop(tid, None)
        if task is not None:
            self._progress.remove_task(task)
            if not self._tasks:
                self._progress.stop()


class ConsoleReporter:
    """Sentences for people. The QR is drawn by the caller (it needs the terminal)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._paths: dict[str, str] = {}
        self._bars = _Bars(self.console)

    def emit(self, event: str, **f: Any) -> None:
        say = self.console.print
        name = escape(str(f.get("name", "")))
        file = escape(str(f.get("file", "")))
        if event == "progress":
            self._bars.update(f)
            return
        if event in ("sent_file", "received_file", "transfer_cancelled", "transfer_failed", "transfer_rejected",
                     "transfer_interrupted"):
            self._bars.finish(str(f.get("id")))
        if event == "offered":
            say(f"Offering {file} ({_size(f.get('size'))}) to {name}…")
        elif event == "accepted":
            resumed = f", resuming at {_size(f['offset'])}" if f.get("offset") else ""
            say(f"{name} accepted {file}{resumed}.")
        elif event == "incoming":
            resumed = f", resuming at {_size(f['offset'])}" if f.get("offset") else ""
            say(f"Receiving {file} ({_size(f.get('size'))}) from {name}{resumed}…")
        elif event == "offer":
            pass  # "confirm_file" asks, or --auto-accept takes it: "incoming" follows
        elif event == "confirm_file":
            say(f"[bold]{name}[/bold] wants to send you [bold]{file}[/bold] ({_size(f.get('size'))}). "
                "Accept? Type y or n:")
        elif event == "sent_file":
            via = f" over the {escape(str(f['via']))}" if f.get("via") else ""
            say(f"[green]Sent {file}[/green] to {name} ({_size(f.get('size'))} in {f.get('seconds', 0):.1f} s{via}; "
                "the receiver checked its sha-256).")
        elif event == "received_file":
            via = f", over the {escape(str(f['via']))}" if f.get("via") else ""
            say(f"[green]Received {file}[/green] from {name}: {escape(str(f.get('path', '')))} "
                f"({_size(f.get('size'))}, sha-256 checked{via}).")
        elif event == "lan":
            say(escape(str(f.get("message", ""))))
        elif event == "lan_refused" and f.get("side") == "agent":
            say(f"[dim]Refused a LAN connection from {escape(str(f.get('address', '')))}: "
                f"{escape(str(f.get('reason', '')))}[/dim]")
        elif event == "lan_refused" and f.get("authenticated"):
            say(f"[yellow]Reached {name} on the LAN at {escape(str(f.get('address', '')))} but could not connect:"
                f"[/yellow] {escape(str(f.get('reason', '')))}")
        elif event == "lan_refused":
            say(f"[yellow]Skipped a device at {escape(str(f.get('address', '')))} that claims to be {name}:[/yellow] "
                f"{escape(str(f.get('reason', '')))}")
        elif event in ("transfer_cancelled", "transfer_failed", "transfer_rejected"):
            what = {"transfer_cancelled": "cancelled", "transfer_failed": "failed",
                    "transfer_rejected": "declined"}[event]
            say(f"[yellow]{file} {what}:[/yellow] {escape(str(f.get('message', '')))}")
        elif event == "transfer_interrupted":
            say(f"[yellow]{file} interrupted:[/yellow] {escape(str(f.get('message', '')))}")
        elif event == "installed":
            say(f"Browser extension link installed: {escape(str(f.get('path', '')))}")
        elif event == "beamed":
            say(f"[green]Beamed[/green] {escape(str(f.get('title') or f.get('url')))} to {name} "
                f"({f.get('thumbnails', 0)} thumbnails).")
        elif event == "page":
            say(f"[bold]Page from {name}:[/bold] {escape(str(f.get('title', '')))}\n  {escape(str(f.get('url', '')))}\n"
                f"  {len(f.get('thumbs', []))} thumbnails in {escape(str(f.get('folder', '')))}")
        elif event == "pulled_page":
            say(f"Got {escape(str(f.get('title') or f.get('url')))} from {name}.")
        elif event == "pull_refused":
            say(f"[yellow]Refused a pull from {name}:[/yellow] {escape(str(f.get('message', '')))}")
        elif event == "sync_started":
            what = escape(str(f.get("url") or "")) or "its document"
            who = "started by the other device" if f.get("by") == "peer" else f"shared with {name}"
            say(f"[green]Page sync[/green] {who}: {what}")
        elif event in ("sync_stopped", "sync_refused"):
            say(f"[yellow]Page sync:[/yellow] {escape(str(f.get('message', 'ended.')))}")
        elif event == "sync_following":
            say(f"Following {name}'s page.")
        elif event == "sync_reader":
            cut = " (cut: the rest is on the PC)" if f.get("truncated") else ""
            say(f"Reader view from {name}: {escape(str(f.get('title') or f.get('url')))}, {f.get('blocks', 0)} blocks{cut}.")
        elif event == "sync_document":
            say(_describe_document(f))
        elif event in ("sync_applied", "sync_done"):
            pass  # every remote change: too many lines for people (--json has them)
        elif event in ("active", "inactive"):
            say(escape(str(f.get("message", event))))
        elif event == "qr":
            say(f"Scan to pair (valid until {time.strftime('%H:%M:%S', time.localtime(f['expires_at']))}):")
            say(f"[dim]{escape(f['url'])}[/dim]")
            for key in ("png", "svg"):
                if f.get(key):
                    say(f"[dim]QR written to {escape(str(f[key]))}[/dim]")
        elif event == "qr_text":
            say(f["text"])
        elif event == "server":
            say(f"Signaling server listening on {escape(f['url'])}")
        elif event == "joined" and f.get("side") == "joiner":
            say(f"Reached [bold]{name}[/bold]; securing the connection…")
        elif event == "joined":
            say(f"[bold]{name}[/bold] scanned the code.")
        elif event == "join_refused":
            say(f"[yellow]Someone tried to reuse the pairing code:[/yellow] {escape(f['message'])}")
        elif event == "verify":
            say(f"Comparison code with {name}: [bold]{f['code']}[/bold]")
        elif event == "paired":
            say(f"[green]Paired with {name}[/green] (code {f.get('code', '')}).")
        elif event == "connected":
            self._paths[name] = _describe_path(f.get("path", {}))
            say(f"[green]Connected to {name}[/green] via {self._paths[name]}")
        elif event == "path":
            described = _describe_path(f)
            if self._paths.get(name) != described:  # "connected" already said it
                self._paths[name] = described
                say(f"Path to {name}: {described}")
        elif event == "message":
            say(f"[bold]{escape(str(f.get('from', '')))}:[/bold] {escape(f['text'])}")
        elif event == "sent":
            say(f"Delivered to {name}.")
        elif event == "waiting":
            say(f"Waiting for {name}…")
        elif event == "disconnected":
            say(f"[yellow]{name} disconnected:[/yellow] {escape(str(f.get('message', '')))}")
        elif event == "unpaired":
            say(f"Unpaired {name}. {escape(str(f.get('message', '')))}")
        elif event == "device":
            seen = f.get("last_seen")
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(seen)) if seen else "never"
            state = " [green](connected)[/green]" if f.get("connected") else ""
            say(f"{name}  last seen {when}{state}")
        elif event == "confirm":
            say(f"Pair with [bold]{name}[/bold]? Check that it shows [bold]{f['code']}[/bold], then type y or n:")
        elif event == "warning":
            say(f"[yellow]Warning:[/yellow] {escape(f['message'])}")
        elif event == "error":
            say(f"[red]Error ({f['code']}):[/red] {escape(f['message'])}")
        else:
            details = ", ".join(f"{k}={v}" for k, v in f.items())
            say(f"{event}: {escape(details)}")


def _describe_document(f: dict[str, Any]) -> str:
    state = f.get("state") or {}
    tabs = state.get("tabs") or {}
    active = state.get("active")
    lines = [f"Page sync {escape(str(f.get('doc')))} ({'connected' if f.get('connected') else 'apart'}, "
             f"{_size(f.get('size'))}):"]
    for key, tab in tabs.items():
        mark = "▶" if key == active else " "
        scroll = (state.get("scroll") or {}).get(key) or {}
        where = f"  block {scroll.get('block', 0):.0f}, {100 * float(scroll.get('fraction', 0)):.0f} %" if scroll else ""
        lines.append(f" {mark} {escape(str(tab.get('title') or tab.get('url')))}{where}")
    find = (state.get("find") or {}).get(active or "") or {}
    if find.get("query"):
        lines.append(f"  find: {escape(str(find['query']))} (match {find.get('match', -1):.0f} of {find.get('count', 0):.0f})")
    for mark in (state.get("highlights") or {}).values():
        note = f" — {escape(str(mark['note']))}" if mark.get("note") else ""
        lines.append(f"  highlight: “{escape(str(mark.get('quote', '')))}”{note}")
    for bookmark in (state.get("bookmarks") or {}).values():
        lines.append(f"  bookmark: {escape(str(bookmark.get('title')))} {escape(str(bookmark.get('url')))}")
    return "\n".join(lines)


def make_reporter(json_mode: bool) -> Reporter:
    return JsonReporter() if json_mode else ConsoleReporter()
