"""Transfer throughput: `peerbeam send FILE` next to a bare aiortc data channel and TCP.

Run as root from the repository root:

    .venv/bin/python bench/throughput.py [--runs 3] [--size-mb 200] [--loops uvloop,asyncio]
                                         [--cases bare,ours,tcp] [--tune ...] [--json]

It writes ``--size-mb`` MB (10^6 bytes) of random bytes to a temporary file, builds its own
network-namespace lab (tests.lab: "pc" 198.51.100.1, "phone" 198.51.100.2, one veth pair, no
link to the host network) and always removes both. Every case sends that same file from pc to
phone, ``--runs`` times per event loop; the median and min/max are shown, in MB/s:

* bare: bench/throughput_driver.py on both ends, a fresh RTCPeerConnection per run, one data
  channel, 64 KiB binary messages, flow control at 1 MiB / 256 KiB (as peer_agent.rtc);
  timed from the first byte handed to aiortc (sender) to the last byte hashed (receiver);
* ours: `peerbeam signal` and `peerbeam agent --auto-accept` in pc, `peerbeam join LINK
  --auto-accept --downloads TMP` in phone (paired once per event loop, then kept; each received
  file is deleted after its run), and per run `peerbeam send
  FILE --to Phone` in pc; timed from starting that command to the phone's ``received_file``
  line (so Python start-up and the control socket are in), with the ``seconds`` that
  ``sent_file`` and ``received_file`` report shown as well;
* tcp: the same driver over TCP, pc→phone across the veth, and both ends inside pc over its
  own loopback; 64 KiB writes, ``drain()`` after each, the receiver hashes.

Event loops: the drivers take ``--loop``; the CLI uses uvloop when importable and is asked for
plain asyncio with ``PEERBEAM_NO_UVLOOP=1`` (rows are skipped, with a note, where the CLI does
not honour it yet). The bare receiver hashes in memory, peerbeam also writes the file (and
fsyncs, if it does) to its download folder: that difference is part of what is measured.

The machine may be shared: each run first waits (up to ``--quiet-wait`` s) until other processes
use under 5 % of the CPUs, records how much they took while it ran, and is run again (up to
``--retries`` times) when that was over ``--max-foreign``. ``--tune`` passes experiments to
the bare runs (see bench/throughput_driver.py; most touch aiortc internals).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError, run_in_lab
from bench.pairing import machine
from tests.lab import Host, Lab
from tests.peer_process import PeerProcess

PEERBEAM = REPO_ROOT / ".venv" / "bin" / "peerbeam"
DRIVER = "bench/throughput_driver.py"
SIGNAL_PORT = 8443
FIRST_PORT = 9500
TICKS = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1
QUIET = 0.05  # other processes' share of all CPUs under which a run may start
MIN_RATE_MB_S = 0.5  # timeouts assume at least this much; a stall below it fails the run

ROWS = [  # (key, label)
    ("bare", "bare aiortc data channel"),
    ("ours_wall", "peerbeam send → received_file"),
    ("ours_recv", "  received_file.seconds"),
    ("ours_sent", "  sent_file.seconds"),
    ("tcp_veth", "TCP pc→phone (veth)"),
    ("tcp_lo", "TCP loopback inside pc"),
]


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)  # the drivers' clock, see their docstring


def make_payload(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def udp_errors(host: Host) -> int:
    """UDP RcvbufErrors + SndbufErrors in `host`'s namespace (/proc/net/snmp is per netns): each
    one a datagram dropped, which SCTP must detect and resend (RFC 4960 §7.2.4)."""
    lines = [line.split() for line in host.run(["cat", "/proc/net/snmp"]).stdout.splitlines() if line.startswith("Udp:")]
    fields = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return fields.get("RcvbufErrors", 0) + fields.get("SndbufErrors", 0)


def busy_ticks() -> int:
    """CPU time every process on the machine has used (user + nice + system), in clock ticks."""
    user, nice, system = Path("/proc/stat").read_text().split(maxsplit=4)[1:4]
    return int(user) + int(nice) + int(system)


def process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14 and 15)


class CpuMeter:
    """How much CPU processes other than ours used during a run, as a share of all CPUs.

    This machine is shared (other sessions run test suites on its 2 CPUs): a run that had to
    share its CPUs measures the neighbours as much as the transfer, so each run records it.
    Ours = this process, its reaped children (RUSAGE_CHILDREN) and the long-lived ones.
    """

    def __init__(self, long_lived: list[int]) -> None:
        self.long_lived = long_lived
        self.start = self._sample()

    def _sample(self) -> tuple[float, int, int]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = round((own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime) * TICKS) + sum(
            process_ticks(pid) for pid in self.long_lived)
        return now(), busy_ticks(), ours

    def foreign(self) -> float:
        t, busy, ours = self._sample()
        t0, busy0, ours0 = self.start
        return max(0, (busy - busy0) - (ours - ours0)) / ((t - t0) * TICKS * CPUS)


async def wait_quiet(limit_s: float, long_lived: list[int], say: Callable[[str], None]) -> float:
    """Wait (up to `limit_s`) until other processes use under QUIET of the CPUs over 2 s."""
    deadline = now() + limit_s
    told = False
    while True:
        meter = CpuMeter(long_lived)
        await asyncio.sleep(2)
        load = meter.foreign()
        if load < QUIET or now() > deadline:
            return load
        if not told:
            say(f"other processes use {load:.0%} of the CPUs; waiting up to {limit_s:g} s for a quieter machine…")
            told = True


def cli_status() -> dict[str, bool]:
    """Which parts of the `send FILE` contract the CLI has yet (it is being written)."""
    sources = "\n".join(p.read_text() for p in (REPO_ROOT / "peer_agent").glob("*.py"))
    join_help = subprocess.run([str(PEERBEAM), "join", "--help"], capture_output=True, text=True, check=False,
                               timeout=30).stdout
    return {"send_file": "sent_file" in sources and "received_file" in sources,
            "join_auto_accept": "--auto-accept" in join_help,
            "no_uvloop_env": "PEERBEAM_NO_UVLOOP" in sources}


class Bench:
    def __init__(self, lab: Lab, tmp: Path, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.lab, self.tmp, self.args, self.say = lab, tmp, args, say
        self.pc, self.phone = lab.lan_pair()
        self.size = args.size_mb * 1_000_000
        self.payload = tmp / "payload.bin"
        self.sha256 = ""
        self.ports = iter(range(FIRST_PORT, FIRST_PORT + 10_000))
        self.timeout = 60 + self.size / (MIN_RATE_MB_S * 1e6)
        self.signal_origin: str | None = None
        self.long_lived: list[int] = []  # server, agents, peers: their CPU is ours too

    async def measured(self, run: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
        """`run()`, started on a quiet machine, with the CPU share others took meanwhile; run
        again (up to --retries times) when others took more than --max-foreign of the CPUs."""
        for attempt in range(self.args.retries + 1):
            await wait_quiet(self.args.quiet_wait, self.long_lived, self.say)
            meter = CpuMeter(self.long_lived)
            result = await run()
            result["foreign_cpu"] = meter.foreign()
            result["attempts"] = attempt + 1
            if result["foreign_cpu"] <= self.args.max_foreign:
                break
            self.say(f"  other processes took {result['foreign_cpu']:.0%} of the CPUs during that run "
                     f"({result['mb_s']:.1f} MB/s): {'again' if attempt < self.args.retries else 'kept'}")
        return result

    async def script(self, host: Host, *argv: str) -> PeerProcess:
        return await host.spawn([sys.executable, DRIVER, *argv], env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)

    async def driver_run(self, kind: str, sender: Host, receiver: Host, address: str, loop: str,
                         tune: str = "") -> dict[str, Any]:
        """One bare transfer (kind "rtc" or "tcp"); both processes exit afterwards."""
        listen = f"{address}:{next(self.ports)}"
        extra = ["--tune", tune] if tune else []
        errors_before = udp_errors(receiver), udp_errors(sender)
        recv = await self.script(receiver, f"{kind}-recv", "--listen", listen, "--size", str(self.size),
                                 "--loop", loop, *extra)
        await recv.expect("listening", timeout=30)
        send = await self.script(sender, f"{kind}-send", "--connect", listen, "--file", str(self.payload),
                                 "--loop", loop, *extra)
        try:
            sent = await send.expect("sent", timeout=self.timeout)
            got = await recv.expect("received", timeout=self.timeout)
            if await send.wait(30) or await recv.wait(30):
                raise BenchError(f"{kind} driver exited with an error")
        except (AssertionError, TimeoutError) as exc:
            raise BenchError(f"{kind} run failed: {exc}\n--- sender stderr ---\n{send.stderr_tail}\n"
                             f"--- receiver stderr ---\n{recv.stderr_tail}") from None
        if got["sha256"] != self.sha256 or got["bytes"] != self.size:
            raise BenchError(f"{kind}: received {got['bytes']} bytes with sha-256 {got['sha256']}")
        seconds = got["t_end"] - sent["t0"]
        return {"seconds": seconds, "mb_s": self.size / seconds / 1e6,
                "in_flight_chunks": {k: sent[f"in_flight_{k}"] for k in ("median", "max") if f"in_flight_{k}" in sent},
                "first_byte_ms": (got["t_first"] - sent["t0"]) * 1000,
                "udp_drops": {"receiver": udp_errors(receiver) - errors_before[0],
                              "sender": udp_errors(sender) - errors_before[1]}}

    # -- ours ---------------------------------------------------------------------------------

    async def peerbeam(self, host: Host, home: Path, *argv: str, loop: str) -> PeerProcess:
        env = {"PYTHONUNBUFFERED": "1"}
        if loop == "asyncio":
            env["PEERBEAM_NO_UVLOOP"] = "1"
        return await host.spawn([str(PEERBEAM), "--home", str(home), "--json", *argv], env=env, cwd=REPO_ROOT)

    async def ours_pair(self, loop: str) -> tuple[PeerProcess, PeerProcess, Path]:
        """A paired agent (pc) and peer (phone) on `loop`, both connected; returns the agent's home."""
        if self.signal_origin is None:
            server = await self.pc.spawn([str(PEERBEAM), "--home", str(self.tmp / "server"), "--json", "signal",
                                          "--host", self.pc.address, "--port", str(SIGNAL_PORT)],
                                         env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
            self.signal_origin = (await server.expect("server", timeout=30))["url"]
            self.long_lived.append(server.pid)
        agent_home, phone_home = self.tmp / f"agent-{loop}", self.tmp / f"phone-{loop}"
        agent = await self.peerbeam(self.pc, agent_home, "agent", "--server", self.signal_origin, "--name", "PC",
                                    "--auto-accept", loop=loop)
        link = (await agent.expect("qr", timeout=60))["url"]
        peer = await self.peerbeam(self.phone, phone_home, "join", link, "--name", "Phone", "--auto-accept",
                                   "--downloads", str(self.tmp / f"downloads-{loop}"), loop=loop)
        await peer.expect("connected", name="PC", timeout=60)
        await agent.expect("connected", name="Phone", timeout=60)
        self.long_lived += [agent.pid, peer.pid]
        return agent, peer, agent_home

    async def ours_run(self, agent_home: Path, peer: PeerProcess, loop: str) -> dict[str, Any]:
        errors_before = udp_errors(self.phone), udp_errors(self.pc)
        t_start = now()
        send = await self.peerbeam(self.pc, agent_home, "send", str(self.payload), "--to", "Phone", loop=loop)
        try:
            got = await peer.expect("received_file", timeout=self.timeout)
            t_end = now()
            sent = await send.expect("sent_file", timeout=60)
            await send.wait(30)
        except (AssertionError, TimeoutError) as exc:
            raise BenchError(f"peerbeam send failed: {exc}\n--- send stdout ---\n{send.stdout_tail}\n"
                             f"--- send stderr ---\n{send.stderr_tail}\n--- peer stderr ---\n{peer.stderr_tail}") from None
        if got["sha256"] != self.sha256 or got["size"] != self.size or sent["sha256"] != self.sha256:
            raise BenchError(f"peerbeam: received {got['size']} bytes with sha-256 {got['sha256']}")
        received = Path(got["path"])
        if received.is_relative_to(self.tmp):  # never delete anything outside our temp dir
            received.unlink(missing_ok=True)
        return {"seconds": t_end - t_start, "mb_s": self.size / (t_end - t_start) / 1e6,
                "recv_seconds": got["seconds"], "recv_mb_s": self.size / got["seconds"] / 1e6,
                "sent_seconds": sent["seconds"], "sent_mb_s": self.size / sent["seconds"] / 1e6,
                "progress_events": sum(1 for e in send.events if e["event"] == "progress"),
                "udp_drops": {"receiver": udp_errors(self.phone) - errors_before[0],
                              "sender": udp_errors(self.pc) - errors_before[1]}}

    # -- the whole run ------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args, say = self.args, self.say
        say(f"writing {args.size_mb} MB of random bytes…")
        self.sha256 = await asyncio.to_thread(make_payload, self.payload, self.size)
        status = cli_status()
        notes: list[str] = []
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for loop in args.loops:
            run_ours = "ours" in args.cases
            if run_ours and not (status["send_file"] and status["join_auto_accept"]):
                notes.append("peerbeam rows skipped: the CLI has no `send FILE` / `join --auto-accept` yet")
                run_ours = False
            if run_ours and loop == "asyncio" and not status["no_uvloop_env"]:
                notes.append("peerbeam on asyncio skipped: the CLI does not honour PEERBEAM_NO_UVLOOP yet")
                run_ours = False
            ours = await self.ours_pair(loop) if run_ours else None
            rows: dict[str, list[dict[str, Any]]] = {}
            samples[loop] = rows
            for i in range(args.runs):
                if "bare" in args.cases:
                    rows.setdefault("bare", []).append(await self.measured(partial(
                        self.driver_run, "rtc", self.pc, self.phone, self.phone.address, loop, args.tune)))
                if ours is not None:
                    rows.setdefault("ours", []).append(await self.measured(
                        partial(self.ours_run, ours[2], ours[1], loop)))
                if "tcp" in args.cases:
                    rows.setdefault("tcp_veth", []).append(await self.measured(partial(
                        self.driver_run, "tcp", self.pc, self.phone, self.phone.address, loop)))
                    rows.setdefault("tcp_lo", []).append(await self.measured(partial(
                        self.driver_run, "tcp", self.pc, self.pc, "127.0.0.1", loop)))
                say(f"{loop} run {i + 1}/{args.runs}: " + ", ".join(
                    f"{name} {rs[-1]['mb_s']:.1f} MB/s" for name, rs in rows.items()))
            if ours is not None:
                await asyncio.gather(ours[0].stop(), ours[1].stop())
                self.long_lived = [pid for pid in self.long_lived if pid not in (ours[0].pid, ours[1].pid)]
        return {"size_bytes": self.size, "runs": args.runs, "loops": args.loops, "cli": status, "tune": args.tune,
                "max_foreign": args.max_foreign,
                "notes": sorted(set(notes)), "machine": machine(), "samples": samples,
                "results": {loop: summarise(rows) for loop, rows in samples.items()}}


def summarise(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    def stats(values: list[float], source: list[dict[str, Any]]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values),
                "foreign_cpu_max": max(r["foreign_cpu"] for r in source)}

    out: dict[str, dict[str, float]] = {}
    for name, field in (("bare", "mb_s"), ("tcp_veth", "mb_s"), ("tcp_lo", "mb_s"),
                        ("ours_wall", "mb_s"), ("ours_recv", "recv_mb_s"), ("ours_sent", "sent_mb_s")):
        source = rows.get("ours" if name.startswith("ours") else name)
        if source:
            out[name] = stats([r[field] for r in source], source)
    if "bare" in out:
        for name in ("ours_wall", "ours_recv", "ours_sent"):
            if name in out:
                out[name]["vs_bare"] = out[name]["median"] / out["bare"]["median"]
    return out


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=120)
    m = report["machine"]
    table = Table(title=f"Throughput, {report['size_bytes'] / 1e6:g} MB pc→phone, "
                        f"{report['runs']} runs per row, MB/s (10^6 B/s)")
    for col, justify in (("", "left"), ("loop", "left"), ("median", "right"), ("min", "right"),
                         ("max", "right"), ("vs bare", "right"), ("others' CPU", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for key, label in ROWS:
        for loop in report["loops"]:
            s = report["results"].get(loop, {}).get(key)
            if s is None:
                continue
            ratio = f"{s['vs_bare']:.0%}" if "vs_bare" in s else ""
            table.add_row(label, loop, f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}", ratio,
                          f"≤{s['foreign_cpu_max']:.0%}")
    console.print(table)
    console.print("others' CPU: the most that processes other than the benchmark's used, during any run "
                  "of the row, as a share of all CPUs (each run waits for under "
                  f"{QUIET:.0%} first, up to --quiet-wait, and is run again when others took over "
                  f"{report['max_foreign']:.0%}, up to --retries times)")
    console.print(f"{m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}, "
                  f"aiortc {m['aiortc']}, aioice {m['aioice']}, uvloop {m['uvloop']}")
    for loop, rows in report["samples"].items():
        for case in ("bare", "ours"):
            drops = [r["udp_drops"] for r in rows.get(case, [])]
            if drops:
                console.print(f"{case} on {loop}: UDP datagrams dropped for a full socket buffer, per run: receiver "
                              f"{[d['receiver'] for d in drops]}, sender {[d['sender'] for d in drops]}")
    if report["tune"]:
        console.print(f"bare runs with --tune {report['tune']} (aiortc/aioice private attributes: an experiment)")
    for note in report["notes"]:
        console.print(note)


def parse_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t for t in re.split(r"[,\s]+", text) if t]
        bad = set(items) - set(allowed)
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return items
    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="transfers per case and event loop (median shown)")
    parser.add_argument("--size-mb", type=int, default=200, help="payload size in MB (10^6 bytes)")
    parser.add_argument("--loops", type=parse_list(("uvloop", "asyncio")), default=["uvloop", "asyncio"])
    parser.add_argument("--cases", type=parse_list(("bare", "ours", "tcp")), default=["bare", "ours", "tcp"])
    parser.add_argument("--tune", default="", help="bare runs only: experiments of bench/throughput_driver.py "
                        "(comma-separated NAME[=BYTES]: rcvbuf, sndbuf, rwnd, readsize, sackbatch)")
    parser.add_argument("--quiet-wait", type=float, default=300,
                        help="seconds each run may wait for other processes to leave the CPUs idle")
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="a run during which other processes took more of the CPUs than this is run again")
    parser.add_argument("--retries", type=int, default=3, help="how often a disturbed run is run again")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/throughput.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    if args.runs < 1 or args.size_mb < 1:
        parser.error("--runs and --size-mb must be at least 1")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    report = run_in_lab("pb-throughput-", lambda lab, tmp: Bench(lab, tmp, args, say).run())
    if report is None:
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
