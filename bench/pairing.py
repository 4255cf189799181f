"""Pairing benchmark: `peerbeam join` to an open channel, next to a bare aiortc connect.

Run as root from the repository root:

    .venv/bin/python bench/pairing.py [--runs 20] [--warmup 1] [--json]

It builds its own lab (tests.lab: "pc" 198.51.100.1 and "phone" 198.51.100.2, one veth pair,
no link to the host network) and always tears it down. Everything that speaks WebRTC runs in
those namespaces; this process only starts them and reads their JSON lines.

* pc:    `peerbeam signal`, `peerbeam agent --auto-accept`, and the baseline's answerer;
* phone: bench/pairing_driver.py (joins, in-process, timed) and the baseline's offerer.

Each iteration does one bare aiortc run, then one pairing with the agent's current QR link
(tokens are single-use: after each pairing the agent shows a fresh QR, which the next one
uses). The first ``--warmup`` iterations are run but not counted. After each pairing the
joiner unpairs before it closes, so that the agent is not left reconnecting to departed devices
(``--keep-pairings`` shows what that does). Timings are taken inside the drivers with
``time.perf_counter()``; see each driver's docstring for where its clock starts and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError, run_in_lab
from tests.lab import Host, Lab
from tests.peer_process import PeerProcess

SIGNAL_PORT = 8443
BARE_PORT = 9443
RATE_LIMIT_PAUSE_S = 3.0  # the server's join bucket refills one join per 2 s
MAX_RATE_LIMIT_RETRIES = 20

ROWS = [
    ("peerbeam join → channel open", "ours", "open_ms"),
    ("peerbeam join → first round trip", "ours", "rtt_ms"),
    ("bare aiortc offer/answer → channel open", "bare", "open_ms"),
    ("bare aiortc → first round trip", "bare", "rtt_ms"),
]
PHASES = [
    ("peerbeam", "ours", [("joined_ms", "token accepted"), ("verify_ms", "Noise NK done"),
                          ("open_ms", "channel bound"), ("round_trip_only_ms", "+ round trip")]),
    ("bare aiortc", "bare", [("offer_ms", "offer made"), ("answer_ms", "answer in"),
                             ("open_ms", "channel open"), ("round_trip_only_ms", "+ round trip")]),
]
EXPECTED_DRIVER_EVENTS = {"joined", "verify", "paired", "connected", "path"}
INCLUDED = (
    "peerbeam includes: a fresh Node and identity key, the WebSocket to the server, the token "
    "check, the Noise NK handshake relayed by the server, the SDP offer/answer sealed by Noise, "
    "ICE (host candidates), DTLS, SCTP and the data-channel open, the binding MAC exchange, and "
    "writing the pairing record (fsync) before join returns. The bare baseline has only ICE, "
    "DTLS, SCTP and the channel open (SDP over a TCP socket opened once, no server, no crypto "
    "of ours)."
)


def default_loop() -> str:
    # The same choice as peer_agent.cli._run makes for `agent` and `signal`.
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def summary(samples: list[float]) -> dict[str, Any]:
    # p90: linear interpolation between closest ranks (statistics "inclusive" method).
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[8] if len(samples) > 1 else samples[0]
    return {"median": statistics.median(samples), "p90": p90, "min": min(samples), "max": max(samples),
            "samples": [round(s, 2) for s in samples]}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("aiortc", "aioice", "uvloop", "aiohttp", "cryptography"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), **versions}


async def last_qr(agent: PeerProcess) -> str:
    """The agent's newest pairing link: refreshes may have stacked up several QR events."""
    url: str = (await agent.expect("qr", timeout=60))["url"]
    while True:
        try:
            url = (await agent.expect("qr", timeout=0))["url"]
        except AssertionError:
            return url


async def bare_run(offerer: PeerProcess) -> dict[str, Any]:
    await offerer.write_line("run")
    result = await offerer.expect("result", timeout=60)
    if not result["ok"]:
        raise BenchError(f"bare aiortc run failed: {result}\n{offerer.stderr_tail}")
    return result


async def pairing_run(agent: PeerProcess, driver: PeerProcess, url: str, name: str,
                      keep_pairing: bool) -> tuple[dict[str, Any], int]:
    """One join; returns its result and how many times the server said to slow down."""
    for retries in range(MAX_RATE_LIMIT_RETRIES):
        await driver.write_line(json.dumps({"url": url, "name": name}))
        result = await driver.expect("result", timeout=60)
        if result["ok"]:
            # Before the next run the agent has seen this device go: unpaired (default), or
            # disconnected — after which it keeps a rendezvous socket open to reconnect to it.
            await agent.expect("disconnected" if keep_pairing else "unpaired", name=name, timeout=30)
            return result, retries
        if result["code"] != "rate_limited":
            raise BenchError(f"join failed: {result}\n--- driver stderr ---\n{driver.stderr_tail}\n"
                             f"--- agent stdout ---\n{agent.stdout_tail}\n--- agent stderr ---\n{agent.stderr_tail}")
        await asyncio.sleep(RATE_LIMIT_PAUSE_S)
    raise BenchError(f"the server kept refusing joins (rate_limited) {MAX_RATE_LIMIT_RETRIES} times")


async def bench(lab: Lab, tmp: Path, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    runs, warmup, loop = args.runs, args.warmup, args.loop
    pc, phone = lab.lan_pair()
    python = sys.executable

    async def script(host: Host, *args: str) -> PeerProcess:
        return await host.spawn([python, *args], env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)

    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(SIGNAL_PORT)],
                               home=tmp / "server")
    origin = (await server.expect("server", timeout=30))["url"]
    agent = await pc.peerbeam(["--json", "agent", "--server", origin, "--name", "PC", "--auto-accept"],
                              home=tmp / "agent")
    answerer = await script(pc, "bench/bare_aiortc.py", "answer", "--listen", f"{pc.address}:{BARE_PORT}",
                            "--loop", loop)
    await answerer.expect("listening", timeout=30)
    offerer = await script(phone, "bench/bare_aiortc.py", "offer", "--connect", f"{pc.address}:{BARE_PORT}",
                           "--loop", loop)
    driver = await script(phone, "bench/pairing_driver.py", "--loop", loop,
                          *(["--keep-pairings"] if args.keep_pairings else []))
    await offerer.expect("ready", timeout=30)
    await driver.expect("ready", timeout=30)
    url = await last_qr(agent)

    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    rate_limited = 0
    for i in range(warmup + runs):
        b = await bare_run(offerer)
        o, retries = await pairing_run(agent, driver, url, f"Bench {i:02d}", args.keep_pairings)
        rate_limited += retries
        url = await last_qr(agent)  # tokens are single-use: the next run needs the fresh QR
        counted = i >= warmup
        if counted:
            bare.append(b)
            ours.append(o)
        say(f"run {i + 1 - warmup if counted else 'warm-up'}: peerbeam open {o['open_ms']:.1f} ms, "
            f"round trip {o['rtt_ms']:.1f} ms | bare open {b['open_ms']:.1f} ms, round trip {b['rtt_ms']:.1f} ms")

    by_side = {"ours": ours, "bare": bare}
    results = {f"{side}_{field}": summary([r[field] for r in by_side[side]]) for _, side, field in ROWS}
    phases = {side: {field: statistics.median(r["phases"][field] for r in by_side[side]) for field, _ in fields}
              for _, side, fields in PHASES}
    errors = [e for e in agent.events if e["event"] == "error"]
    # Anything but the pairing's own events on the joining side (a drop, a reconnect attempt,
    # an error) means the runs did not measure what they claim to: show it.
    unexpected = sorted({e for r in ours for e in r["events"]} - EXPECTED_DRIVER_EVENTS)
    return {"runs": runs, "warmup": warmup, "loop": loop, "machine": machine(), "results": results,
            "phase_medians_ms": phases, "rate_limited_retries": rate_limited,
            "agent_errors": errors, "driver_unexpected_events": unexpected, "keep_pairings": args.keep_pairings, "included": INCLUDED}


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    m = report["machine"]
    table = Table(title=f"Pairing, {report['runs']} runs (+{report['warmup']} warm-up), ms")
    table.add_column("")
    for col in ("median", "p90", "min", "max"):
        table.add_column(col, justify="right")
    for label, side, field in ROWS:
        s = report["results"][f"{side}_{field}"]
        table.add_row(label, *(f"{s[c]:.1f}" for c in ("median", "p90", "min", "max")))
    console.print(table)
    for label, side, fields in PHASES:
        med = report["phase_medians_ms"][side]
        console.print(f"{label} median timeline: " + ", ".join(f"{name} {med[f]:.1f}" for f, name in fields))
    console.print(f"event loop: {report['loop']} in both drivers (agent and server: uvloop when installed, "
                  f"as the CLI does); {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, "
                  f"Python {m['python']}, aiortc {m['aiortc']}, aioice {m['aioice']}")
    if report["keep_pairings"]:
        console.print("--keep-pairings: joiners left without unpairing; the agent kept reconnecting to them")
    if report["rate_limited_retries"]:
        console.print(f"joins refused by the server's rate limit and retried: {report['rate_limited_retries']}")
    if report["driver_unexpected_events"]:
        console.print(f"joining side also reported: {', '.join(report['driver_unexpected_events'])}")
    if report["agent_errors"]:
        codes = collections.Counter(e["code"] for e in report["agent_errors"])
        console.print("the agent reported, while opening its next pairing room: "
                      + ", ".join(f"{code} ×{n}" for code, n in codes.items())
                      + " (the server allows 20 pairing QRs a minute per address; the agent retried)")
    console.print(report["included"], style="dim")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1, help="iterations run first and not counted")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=default_loop(),
                        help="event loop of both drivers (default: what the CLI uses)")
    parser.add_argument("--keep-pairings", action="store_true",
                        help="joiners leave without unpairing: the agent keeps a rendezvous socket "
                             "open per departed device (with the server's default 16 sockets per "
                             "address, runs past ~15 then fail)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/pairing.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    report = run_in_lab("pb-bench-", lambda lab, tmp: bench(lab, tmp, args, say))
    if report is None:
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
