"""Page-sync benchmark (issue 7): how long an operation takes to reach the other side over the
data channel, next to a plain text message on the same channel in the same run; and how big the
document is after 10,000 scroll operations, with and without garbage collection.

Run as root from the repository root (about 2 min):

    .venv/bin/python bench/sync.py [--ops 300] [--spaced-ops 200] [--warmup 20] [--json]

Part 1, latency. It builds its own lab (tests.lab: "pc" 198.51.100.1 and "phone" 198.51.100.2,
one veth pair, no link to the host network) and always tears it down. In pc: `peerbeam signal`,
the article site of tests/integration/test_sync_peers.py (`python -m http.server` on 127.0.0.1)
and bench/sync_driver.py as the PC; in phone: bench/sync_driver.py as the phone. Each driver is
a Node in-process (uvloop, as the CLI) that stamps its events with ``time.monotonic()``; the
namespaces share CLOCK_MONOTONIC, so a stamp on each side gives a one-way latency. The phone
joins with the PC's pairing link and the PC starts a session for the article (`sync start URL`).
Then, each way (pc→phone, then phone→pc), ``--warmup`` scroll operations not counted, and three
series of scroll operations (`syncer.apply("scroll", ...)`, what the extension's `sync.op` and
`peerbeam sync op` do):

* every 20 ms (``--ops``): from the operation (stamped just before it) to the receiving side's
  ``sync_applied`` whose scroll counter ``n`` has reached it (the update decoded, checked on a
  scratch copy and applied; the state read back);
* back to back (``--ops``): one event-loop turn between two operations, as fast as they come;
* every 60 ms (``--spaced-ops``): ≥ 50 ms apart, so that the sender's coalescing window
  (SyncLink.flush: at most one batch per 50 ms) never holds an operation back.

Baseline, same channel, same schedules, right after each series: a plain `text` message sent
(fire and forget) until the receiver's ``message`` event. Back to back, at most 150 texts: the
receiver's inbound rate limit (100 a second, burst 200) would drop the rest.

Part 2, size (no network): 10,000 scroll operations on one tab, (i % 1000) / 1000 of the page,
block i % 200, offset (i % 7) / 7, in SyncDoc (pycrdt) with garbage collection (the default)
and without (SyncDoc(gc=False)), and in the yjs SyncDoc of browser_client/app/core/sync_doc.js
through `node browser_client/test/sync_driver.mjs` (gc on, and off with its optional "gc":
false); the full state encoded as a Yjs update v1 (what is saved to disk and what a peer with
nothing gets). Next to the naive way: the same operations as a JSON log (one line each).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError, run_in_lab
from bench.pairing import machine
from peer_agent.sync_doc import SyncDoc
from tests.integration.test_sync_peers import start_site
from tests.lab import Lab
from tests.peer_process import PeerProcess

SIGNAL_PORT = 8443
DRIVER = REPO_ROOT / "bench" / "sync_driver.py"
JS_DRIVER = REPO_ROOT / "browser_client" / "test" / "sync_driver.mjs"
SIZE_OPS = 10_000
MAX_BACK_TO_BACK_TEXTS = 150
SERIES = [  # key, label, seconds between two operations (0: back to back)
    ("every20", "every 20 ms", 0.020),
    ("b2b", "back to back", 0.0),
    ("every60", "every 60 ms (≥ 50 ms apart)", 0.060),
]
DIRECTIONS = [("pc→phone", "pc"), ("phone→pc", "phone")]
EVENT_TIMEOUT = 30.0


def stats(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    return {"median": statistics.median(ordered), "p95": p95, "min": ordered[0], "max": ordered[-1],
            "n": len(ordered)}


# ---- part 1: latency -----------------------------------------------------------------------------

async def command(driver: PeerProcess, answer: str, **request: Any) -> dict[str, Any]:
    await driver.write_line(json.dumps(request))
    return await driver.expect(answer, timeout=EVENT_TIMEOUT + 60)


async def until(driver: PeerProcess, found: Callable[[list[dict[str, Any]]], bool], what: str) -> None:
    deadline = time.monotonic() + EVENT_TIMEOUT
    while not found(driver.events):
        if time.monotonic() > deadline or driver.returncode is not None:
            raise BenchError(f"{driver.label}: no {what} within {EVENT_TIMEOUT:g} s\n{driver.stderr_tail}")
        await asyncio.sleep(0.05)


class Rig:
    def __init__(self, drivers: dict[str, PeerProcess], tab: str) -> None:
        self.drivers = drivers
        self.tab = tab

    def applied(self, receiver: PeerProcess, since: int, by: str) -> list[tuple[float, float]]:
        """(n, mono) of each remote change that brought a scroll by ``by``, in order."""
        out = []
        for event in receiver.events[since:]:
            value = event.get("scroll", {}).get(self.tab) if event["event"] == "applied" else None
            if value is not None and value["by"] == by:
                out.append((value["n"], event["mono"]))
        return out

    async def ops(self, sender: str, series: str, count: int, interval: float) -> dict[str, Any]:
        receiver = self.drivers["phone" if sender == "pc" else "pc"]
        since = len(receiver.events)
        done = await command(self.drivers[sender], "ops_done", cmd="ops", series=series, count=count,
                             interval=interval, tab=self.tab)
        last_n = done["ops"][-1][0]
        await until(receiver, lambda _: any(n >= last_n for n, _ in self.applied(receiver, since, sender)),
                    f"scroll {last_n} from {sender}")
        applied = self.applied(receiver, since, sender)
        latencies, at = [], 0
        for n, mono in done["ops"]:
            while applied[at][0] < n:
                at += 1
            latencies.append((applied[at][1] - mono) * 1000)
        return {**stats(latencies), "applies": len(applied)}

    async def texts(self, sender: str, series: str, count: int, interval: float) -> dict[str, Any]:
        receiver = self.drivers["phone" if sender == "pc" else "pc"]
        done = await command(self.drivers[sender], "texts_done", cmd="texts", series=series, count=count,
                             interval=interval)
        last = done["sent"][-1][0]
        await until(receiver, lambda events: any(e["event"] == "message" and e["text"] == last for e in events),
                    f"text {last!r}")
        got = {e["text"]: e["mono"] for e in receiver.events if e["event"] == "message"}
        missing = [text for text, _ in done["sent"] if text not in got]
        if missing:
            raise BenchError(f"{len(missing)} texts from {sender} never arrived (rate limit?): {missing[:3]}")
        return stats([(got[text] - mono) * 1000 for text, mono in done["sent"]])


async def latency(lab: Lab, tmp: Path, args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    pc, phone = lab.lan_pair()
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(SIGNAL_PORT)],
                               home=tmp / "server")
    origin = (await server.expect("server", timeout=30))["url"]
    site = await start_site(pc, tmp / "site")
    env = {"PYTHONUNBUFFERED": "1"}
    pc_driver = await pc.spawn([sys.executable, str(DRIVER), "pc", str(tmp / "pc"), origin], env=env, cwd=REPO_ROOT)
    link = (await pc_driver.expect("qr", timeout=60))["url"]
    phone_driver = await phone.spawn([sys.executable, str(DRIVER), "phone", str(tmp / "phone")], env=env,
                                     cwd=REPO_ROOT)
    await phone_driver.expect("ready", timeout=60)
    await command(phone_driver, "joined", cmd="join", url=link)
    for driver in (pc_driver, phone_driver):
        path = (await driver.expect("connected", timeout=60))["name"]
        say(f"{driver.label.split(':')[0]} connected to {path}")
    started = await command(pc_driver, "started", cmd="start", url=f"{site}/article.html")
    await phone_driver.expect("sync_reader", timeout=60)
    rig = Rig({"pc": pc_driver, "phone": phone_driver}, started["tab"])

    for _, sender in DIRECTIONS:
        await rig.ops(sender, "warmup", args.warmup, 0.02)
        await rig.texts(sender, "warmup", args.warmup, 0.02)
    results: dict[str, dict[str, Any]] = {}
    for key, label, interval in SERIES:
        count = args.spaced_ops if interval >= 0.05 else args.ops
        for direction, sender in DIRECTIONS:
            ops = await rig.ops(sender, f"{key}-{sender}", count, interval)
            texts = await rig.texts(sender, f"{key}-{sender}",
                                    min(count, MAX_BACK_TO_BACK_TEXTS) if interval == 0 else count, interval)
            results[f"{key} {direction}"] = {"ops": ops, "texts": texts}
            say(f"{label}, {direction}: ops median {ops['median']:.1f} ms p95 {ops['p95']:.1f} "
                f"({ops['applies']} applies for {ops['n']}); text median {texts['median']:.1f} p95 {texts['p95']:.1f}")
    errors = [e for d in rig.drivers.values() for e in d.events if e["event"] in ("error", "disconnected")]
    if errors:
        raise BenchError(f"the drivers reported errors: {errors}")
    return results


# ---- part 2: size --------------------------------------------------------------------------------

def scroll_args(i: int) -> list[Any]:
    return ["t1", (i % 1000) / 1000, i % 200, (i % 7) / 7, "pc"]


def pycrdt_size(gc: bool) -> dict[str, Any]:
    doc = SyncDoc(gc=gc)
    t0 = time.perf_counter()
    for i in range(SIZE_OPS):
        doc.scroll(*scroll_args(i))
    seconds = time.perf_counter() - t0
    return {"bytes": len(doc.encode()), "us_per_op": seconds / SIZE_OPS * 1e6, "state": doc.state()}


def yjs_sizes() -> dict[str, dict[str, Any]]:
    lines = []
    for name, gc in (("on", True), ("off", False)):
        for i in range(SIZE_OPS):
            command: dict[str, Any] = {"doc": name, "op": "scroll", "args": scroll_args(i)}
            if i == 0 and not gc:
                command["gc"] = False
            lines.append(json.dumps(command))
        lines.append(json.dumps({"doc": name, "cmd": "encode", "sv": None}))
        lines.append(json.dumps({"doc": name, "cmd": "state"}))
    done = subprocess.run(["node", str(JS_DRIVER)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=120, check=True)
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    if len(replies) != len(lines) or any(r.get("ok") is False for r in replies):
        raise BenchError(f"sync_driver.mjs refused a command: {[r for r in replies if r.get('ok') is False][:3]}")
    per_doc = SIZE_OPS + 2
    out = {}
    for index, name in enumerate(("on", "off")):
        encoded, state = replies[index * per_doc + SIZE_OPS], replies[index * per_doc + SIZE_OPS + 1]
        out[name] = {"bytes": len(base64.b64decode(encoded["update"])), "state": state["state"]}
    return out


def sizes() -> dict[str, Any]:
    log = "".join(json.dumps({"op": "scroll", "args": scroll_args(i)}) + "\n" for i in range(SIZE_OPS))
    py_on, py_off = pycrdt_size(True), pycrdt_size(False)
    js = yjs_sizes()
    final = py_on.pop("state")
    py_off.pop("state")
    if any(js[name].pop("state")["scroll"]["t1"] != final["scroll"]["t1"] for name in ("on", "off")):
        raise BenchError("yjs and pycrdt ended with different scroll values")
    return {"ops": SIZE_OPS, "pycrdt_gc": py_on, "pycrdt_no_gc": py_off, "yjs_gc": js["on"], "yjs_no_gc": js["off"],
            "json_log": len(log.encode()), "final_state_json": len(json.dumps(final).encode()),
            "final_scroll_json": len(json.dumps(final["scroll"]).encode())}


# ---- report --------------------------------------------------------------------------------------

def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=max(110, Console().width))
    table = Table(title="Page sync: scroll operation → applied on the other side, vs a text message (ms)")
    for col in ("", "ops median", "ops p95", "ops max", "applies/ops", "text median", "text p95", "text max"):
        table.add_column(col, justify="left" if not col else "right")
    for key, label, _ in SERIES:
        for direction, _ in DIRECTIONS:
            r = report["latency"][f"{key} {direction}"]
            ops, texts = r["ops"], r["texts"]
            table.add_row(f"{label}, {direction}", f"{ops['median']:.1f}", f"{ops['p95']:.1f}", f"{ops['max']:.1f}",
                          f"{ops['applies']}/{ops['n']}", f"{texts['median']:.1f}", f"{texts['p95']:.1f}",
                          f"{texts['max']:.1f}")
    console.print(table)
    size = report["size"]
    table = Table(title=f"Document after {size['ops']:,} scroll operations on one tab")
    table.add_column("")
    table.add_column("bytes", justify="right")
    table.add_column("vs JSON log", justify="right")
    rows = [("pycrdt, gc on (default)", size["pycrdt_gc"]["bytes"]),
            ("pycrdt, gc off (SyncDoc(gc=False))", size["pycrdt_no_gc"]["bytes"]),
            ("yjs, gc on (default)", size["yjs_gc"]["bytes"]),
            ("yjs, gc off (new Y.Doc({gc: false}))", size["yjs_no_gc"]["bytes"]),
            ("naive: the operations as a JSON log", size["json_log"]),
            ("for scale: the final state() as JSON", size["final_state_json"])]
    for label, value in rows:
        table.add_row(label, f"{value:,}", f"{value / size['json_log']:.2%}")
    console.print(table)
    m, load = report["machine"], report["load_average_1min"]
    console.print(f"pycrdt ops: {size['pycrdt_gc']['us_per_op']:.0f} µs each with gc, "
                  f"{size['pycrdt_no_gc']['us_per_op']:.0f} µs without", style="dim")
    console.print("ops: from just before `scroll` runs on the sender to the receiver's sync_applied that includes "
                  "it; applies: how many remote changes carried the series (coalescing); text: send → the "
                  "receiver's `message` event; back-to-back texts: first 150 only (inbound burst 200)", style="dim")
    console.print(f"load average (1 min) before {load['before']:.2f}, after {load['after']:.2f}; "
                  f"{m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}, "
                  f"aiortc {m['aiortc']}, uvloop {m['uvloop']}, pycrdt {m['pycrdt']}, node {m['node']}", style="dim")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300, help="operations per series every 20 ms and back to back")
    parser.add_argument("--spaced-ops", type=int, default=200, help="operations in the series every 60 ms")
    parser.add_argument("--warmup", type=int, default=20, help="operations (and texts) each way, not counted")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/sync.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    if min(args.ops, args.spaced_ops, args.warmup) < 1:
        parser.error("--ops, --spaced-ops and --warmup must be at least 1")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    say(f"document size after {SIZE_OPS:,} scroll operations…")
    size = sizes()
    load_before = os.getloadavg()[0]

    async def body(lab: Lab, tmp: Path) -> dict[str, Any]:
        return await latency(lab, tmp, args, say)

    results = run_in_lab("pb-bench-sync-", body)
    if results is None:
        return 1
    from importlib import metadata

    report = {"latency": results, "size": size, "args": vars(args),
              "machine": {**machine(), "pycrdt": metadata.version("pycrdt"), "node": node_version()},
              "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
