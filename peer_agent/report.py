"""What the user sees: rich lines for people, or one JSON event per line for scripts (--json)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape


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
    return f"{kind} ({fields.get('transport', '?')}, {fields.get('local', '?')} ⇄ {fields.get('remote', '?')}{rtt_text})"


class ConsoleReporter:
    """Sentences for people. The QR is drawn by the caller (it needs the terminal)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._paths: dict[str, str] = {}

    def emit(self, event: str, **f: Any) -> None:
        say = self.console.print
        name = escape(str(f.get("name", "")))
        if event == "qr":
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


def make_reporter(json_mode: bool) -> Reporter:
    return JsonReporter() if json_mode else ConsoleReporter()
