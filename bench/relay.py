"""Relay benchmark (issue 6): time-to-connected and throughput on LAN and through real coturn.

Run as root from the repository root:

    .venv/bin/python bench/relay.py [--runs 5] [--size-mb 50] [--scenarios lan,relay-udp,relay-tcp,relay-tls]
                                    [--max-bps 1000000000] [--json]

It builds the NAT lab of tests/nat_lab.py inside a tests.lab.Lab (torn down even after a failure,
Ctrl-C or SIGTERM): "pub" 203.0.113.1 runs coturn (the shipped deploy/coturn/turnserver.conf plus the
lab's lines, started once) and, per scenario, its own `peerbeam signal --turn-secret S
--turn-url URL` with exactly ONE TURN URL, so that a connection can only use the transport the
scenario is about (aiortc takes the first TURN URL anyway, and ice_order only reorders what the
server lists). coturn's per-allocation `max-bps` is raised from the shipped 3 MB/s to
``--max-bps`` (default 1 GB/s): with the shipped cap every relayed row would read 3 MB/s.

Scenarios (agent = `peerbeam agent --auto-accept`, peer = `peerbeam join LINK --auto-accept`):

* lan:        agent in "pc" 198.51.100.129, peer in "phone" .130, same switch; the server hands
              out `turn:…?transport=udp` as a deployment would; the path must be kind "lan";
* relay-udp:  agent in natA, peer in natB (symmetric NATs), routers in mode udp-only-to-turn,
              `turn:203.0.113.1:3478?transport=udp`; the path must be relay over udp;
* relay-tcp:  mode no-udp, `turn:203.0.113.1:3478?transport=tcp`; relay over tcp;
* relay-tls:  mode no-udp, `turns:203.0.113.1:5349?transport=tcp`; relay over tls. Both peers
              get SSL_CERT_FILE=<the lab CA> (aioice verifies against the default store only).

One agent per scenario stays up; each run is a fresh `peerbeam join` (fresh home, named
"Phone N") of the agent's current QR, read from its PNG with zxing-cpp as a camera would. Per run:

* time-to-connected, from the joiner's own JSON lines (``ts`` = time.time(), the same clock in
  every namespace): "join → connected" runs from its ``joined`` event (the server accepted the
  token; the WebSocket is up) to its ``connected`` event (Noise NK, SDP, ICE gathering with the
  TURN allocation, ICE checks, DTLS, SCTP, the binding MAC, the pairing record, and one ping
  round trip for the path's RTT); "start → connected" from just before the process is spawned
  (so Python start-up, ~0.45 s, is in);
* throughput of one ``--size-mb`` MB file agent → peer with `peerbeam send FILE --to "Phone N"`
  (through the agent's control socket): MB/s from the ``seconds`` of ``sent_file`` (the
  transfer itself), and "wall" from spawning `send` to the peer's ``received_file``.

Each run is verified and the script fails loudly instead of printing a number when it is not
what it claims: both sides' ``connected`` path must have the scenario's kind and transport (and
a relay candidate on our own side for the relay rows); the received file's sha-256 (read back
from disk) must equal the sent one, and the peer's path must be unchanged after the transfer;
for relay rows coturn's log must show allocations made during the run from both peers' NAT
addresses, over the scenario's transport and listener, relaying at least the file's size (a LAN
run must relay under a tenth of it), and the NAT routers must have dropped UDP (proof that the
filter was on). After a run the peer
unpairs (the agent is told, and does not keep reconnecting to it) and exits.

The machine may be shared: each run waits (up to ``--quiet-wait`` s) until other processes use
under 5 % of the CPUs and is repeated (up to ``--retries`` times) when they took more than
``--max-foreign`` while it ran (tools of bench/throughput.py). CPU used by the sender, the
receiver and coturn during each transfer is recorded (% of one CPU), and how busy the whole
machine was. uvloop only: PEERBEAM_NO_UVLOOP is removed from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import zxingcpp
from PIL import Image

from bench.harness import BenchError, run_in_lab
from bench.pairing import last_qr, machine
from bench.throughput import CPUS, CpuMeter, busy_ticks, make_payload, parse_list, process_ticks, wait_quiet
from peer_agent import control
from tests.lab import Host, Lab
from tests.nat_lab import SHIPPED_CONF, Coturn, NatLab, NatMode, NatSite, build_nat_lab, start_coturn
from tests.peer_process import PeerProcess

FIRST_SIGNAL_PORT = 8441  # one signaling server per scenario: 8441, 8442, ...
DEFAULT_MAX_BPS = 1_000_000_000  # coturn's per-allocation cap, bytes/s; the shipped file says 3 MB/s
MIN_RATE_MB_S = 0.5  # the transfer timeout assumes at least this much
RATE_LIMIT_PAUSE_S = 3.0  # the server's join bucket refills one join per 2 s
TICKS = os.sysconf("SC_CLK_TCK")
AGENT_NAME = "Desk PC"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    mode: NatMode  # the NAT routers' filters (the LAN's router is never filtered)
    turn: str  # which of Coturn.urls() the server hands out: "udp", "tcp" or "tls"
    kind: str  # the path kind the run must report
    transport: str  # and its transport (for a relay: how the peers reach coturn)


SCENARIOS = {s.key: s for s in (
    Scenario("lan", "LAN (same switch)", NatMode.OPEN, "udp", "lan", "udp"),
    Scenario("relay-udp", "relay, TURN over UDP", NatMode.UDP_ONLY_TO_TURN, "udp", "relay", "udp"),
    Scenario("relay-tcp", "relay, TURN over TCP", NatMode.NO_UDP, "tcp", "relay", "tcp"),
    Scenario("relay-tls", "relay, TURN over TLS", NatMode.NO_UDP, "tls", "relay", "tls"),
)}


@dataclass(frozen=True)
class Stage:
    """What the runs of one scenario share."""

    scenario: Scenario
    agent: PeerProcess
    agent_host: Host
    peer_host: Host
    home: Path  # the scenario's directory: server/, agent/, phone-N/
    env: dict[str, str]  # for both peers (SSL_CERT_FILE for turns:)
    png: Path  # the agent's QR image
    sites: list[NatSite]  # NAT sites whose filters must have dropped UDP


def read_qr(png: Path) -> str:
    results = zxingcpp.read_barcodes(Image.open(png))
    if len(results) != 1:
        raise BenchError(f"expected one QR code in {png}, found {len(results)}")
    return str(results[0].text)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_NEW = re.compile(r"session (\d+): new, realm=<[^>]*>, username=<([^>]*)>")
_CLOSED = re.compile(r"session (\d+): closed \(2nd stage\).* local (\S+), remote ([\d.]+):\d+, reason: (.*)$")
_TCP = re.compile(r"session (\d+): (TLS/)?TCP socket closed remotely")
_PEER_USAGE = re.compile(r"session (\d+): peer usage: .*\bsb=(\d+)")


def coturn_sessions(lines: list[str]) -> dict[str, dict[str, Any]]:
    """Allocations in coturn 4.6 verbose log lines: per session id, the listener (local) and the
    client's address as coturn saw it (remote: the NAT's public address), the transport
    (a TLS session logs its cipher; a TCP one its socket closing; else UDP), and the bytes
    relayed to peers ("peer usage ... sb=", logged periodically and at the end)."""
    sessions: dict[str, dict[str, Any]] = {}
    for line in lines:
        if m := _NEW.search(line):
            sessions[m[1]] = {"username": m[2], "transport": "tls" if "cipher=" in line else "udp", "relayed_bytes": 0}
        elif (m := _CLOSED.search(line)) and m[1] in sessions:
            sessions[m[1]].update(local=m[2], remote=m[3], reason=m[4])
        elif (m := _TCP.search(line)) and m[1] in sessions and not m[2]:
            sessions[m[1]]["transport"] = "tcp"
        elif (m := _PEER_USAGE.search(line)) and m[1] in sessions:
            sessions[m[1]]["relayed_bytes"] += int(m[2])
    return sessions


def tail(proc: PeerProcess) -> str:
    return f"--- {proc.label} stdout ---\n{proc.stdout_tail}\n--- stderr ---\n{proc.stderr_tail}"


class Bench:
    def __init__(self, lab: Lab, tmp: Path, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.lab, self.tmp, self.args, self.say = lab, tmp, args, say
        self.size = args.size_mb * 1_000_000
        self.payload = tmp / "payload.bin"
        self.sha256 = ""
        self.timeout = 60 + self.size / (MIN_RATE_MB_S * 1e6)
        self.secret = secrets.token_hex(16)
        self.nat: NatLab
        self.coturn: Coturn
        self.long_lived: list[int] = []  # coturn, servers, agents, peers: their CPU is ours too

    # -- one scenario -----------------------------------------------------------------------------

    def ends(self, scenario: Scenario) -> tuple[Host, Host, list[NatSite]]:
        """(agent's host, peer's host, the NAT sites whose filters must have dropped UDP)."""
        if scenario.kind == "lan":
            assert self.nat.lan is not None
            return self.nat.lan.pc, self.nat.lan.phone, []
        return self.nat.a.host, self.nat.b.host, [self.nat.a, self.nat.b]

    async def scenario(self, scenario: Scenario, port: int) -> list[dict[str, Any]]:
        self.nat.set_mode(scenario.mode)
        agent_host, peer_host, sites = self.ends(scenario)
        home = self.tmp / scenario.key
        env = {"SSL_CERT_FILE": str(self.coturn.pki.ca_file)} if scenario.turn == "tls" else {}
        server = await self.nat.pub.peerbeam(
            ["--json", "signal", "--host", self.nat.pub.address, "--port", str(port),
             "--turn-secret", self.secret, "--turn-url", self.coturn.urls()[scenario.turn]], home=home / "server")
        origin = (await server.expect("server", timeout=30))["url"]
        png = home / "agent" / "qr.png"
        agent = await agent_host.peerbeam(
            ["--json", "agent", "--server", origin, "--name", AGENT_NAME, "--auto-accept",
             "--qr-png", str(png), "--downloads", str(home / "agent-downloads")], home=home / "agent", env=env)
        stage = Stage(scenario, agent, agent_host, peer_host, home, env, png, sites)
        self.long_lived += [server.pid, agent.pid]
        runs: list[dict[str, Any]] = []
        try:
            n = 0
            while len(runs) < self.args.runs:
                for attempt in range(self.args.retries + 1):
                    n += 1
                    await wait_quiet(self.args.quiet_wait, self.long_lived, self.say)
                    meter = CpuMeter(self.long_lived)
                    run = await self.run(stage, n)
                    run["foreign_cpu"] = meter.foreign()
                    if run["foreign_cpu"] <= self.args.max_foreign:
                        break
                    self.say(f"  other processes took {run['foreign_cpu']:.0%} of the CPUs during that run: "
                             f"{'again' if attempt < self.args.retries else 'kept'}")
                run["attempts"] = attempt + 1
                runs.append(run)
                self.say(f"{scenario.key} run {len(runs)}/{self.args.runs}: join→connected "
                         f"{run['join_to_connected_ms']:.0f} ms, start→connected {run['start_to_connected_ms']:.0f} ms, "
                         f"{run['mb_s']:.1f} MB/s ({run['wall_mb_s']:.1f} wall), path {run['path']['transport']} "
                         f"{run['path']['local']}→{run['path']['remote']}, rtt {run['path'].get('rtt_ms')} ms, "
                         f"CPU s sender/receiver/coturn " + "/".join(f"{v:.2f}" for v in run["cpu_seconds"].values())
                         + f", coturn: {run['coturn']['allocations']} allocations, "
                         f"{run['coturn']['relayed_bytes'] / 1e6:.1f} MB relayed")
            errors = [e for e in agent.events if e["event"] == "error"]
            if errors:
                raise BenchError(f"{scenario.key}: the agent reported errors: {errors}")
        finally:
            await asyncio.gather(agent.stop(), server.stop())
            self.long_lived = [p for p in self.long_lived if p not in (server.pid, agent.pid)]
        return runs

    # -- one run: join, check the path, send, check the file, unpair -----------------------------

    async def current_link(self, stage: Stage) -> str:
        """The link a camera would read now: the agent's newest QR (tokens are single-use, so
        it shows a fresh one after each pairing, and refreshes it before it expires), checked
        against what its PNG carries."""
        link = await last_qr(stage.agent)
        for _ in range(20):
            if read_qr(stage.png) == link:
                return link
            await asyncio.sleep(0.1)  # a refresh is being written, or was announced since
            with contextlib.suppress(AssertionError):
                link = (await stage.agent.expect("qr", timeout=0))["url"]
        raise BenchError(f"{stage.scenario.key}: the QR PNG does not carry the agent's current link")

    async def join(self, stage: Stage, n: int) -> tuple[PeerProcess, float]:
        scenario = stage.scenario
        link = await self.current_link(stage)
        peer_home = stage.home / f"phone-{n}"
        for _ in range(20):
            t_spawn = time.time()
            peer = await stage.peer_host.peerbeam(
                ["--json", "join", link, "--name", f"Phone {n}", "--auto-accept",
                 "--downloads", str(peer_home / "downloads")], home=peer_home, env=stage.env)
            self.long_lived.append(peer.pid)
            try:
                await peer.expect("joined", timeout=30)
                return peer, t_spawn
            except AssertionError as exc:
                refused = [e for e in peer.events if e["event"] == "error" and e.get("code") == "rate_limited"]
                self.long_lived.remove(peer.pid)
                await peer.stop()
                if not refused:
                    raise BenchError(f"{scenario.key}: join failed: {exc}") from None
                await asyncio.sleep(RATE_LIMIT_PAUSE_S)
        raise BenchError(f"{scenario.key}: the server kept refusing joins (rate_limited)")

    def check_path(self, scenario: Scenario, side: str, path: dict[str, Any]) -> None:
        ok = path.get("kind") == scenario.kind and path.get("transport") == scenario.transport
        if scenario.kind == "relay":
            ok = ok and path.get("local_type") == "relay"
        if not ok:
            raise BenchError(f"{scenario.key}: the {side} connected over {path}, not over "
                             f"kind={scenario.kind} transport={scenario.transport}: no number printed for it")

    async def coturn_account(self, scenario: Scenario, log_start: int, sources: list[str]) -> dict[str, Any]:
        """coturn's own account of the run, from its log: the allocations made since `log_start`
        (waiting until each is closed, which logs its listener and client address), how each
        client reached it, and how many bytes it relayed to peers."""
        deadline = time.monotonic() + 20
        while True:
            lines = self.coturn.log_lines()[log_start:]
            sessions = coturn_sessions(lines)
            if all("local" in s for s in sessions.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        relayed = sum(s["relayed_bytes"] for s in sessions.values())
        account = {"allocations": len(sessions), "relayed_bytes": relayed,
                   "sessions": [{k: v for k, v in s.items() if k != "username"} for s in sessions.values()]}
        if scenario.kind != "relay":
            # A LAN run gets TURN credentials too (and may allocate), but must not relay the file.
            if relayed > self.size / 10:
                raise BenchError(f"{scenario.key}: coturn relayed {relayed} bytes during a LAN run\n"
                                 + "\n".join(lines[-40:]))
            return account
        port = self.coturn.tls_port if scenario.turn == "tls" else self.coturn.port
        ours = [s for s in sessions.values() if s.get("remote") in sources]
        wrong = [s for s in ours if s.get("local") != f"{self.coturn.address}:{port}" or s["transport"] != scenario.turn]
        if {s["remote"] for s in ours} != set(sources) or wrong or relayed < self.size:
            raise BenchError(f"{scenario.key}: coturn's log does not show both peers ({sources}) allocating over "
                             f"{scenario.turn} on port {port} and relaying the file ({self.size} bytes): "
                             f"{account}\n" + "\n".join(lines[-40:]))
        return account

    async def run(self, stage: Stage, n: int) -> dict[str, Any]:
        scenario, agent = stage.scenario, stage.agent
        log_start = len(self.coturn.log_lines())
        drops_start = [NatLab.dropped_udp(s) for s in stage.sites]
        peer, t_spawn = await self.join(stage, n)
        name = f"Phone {n}"
        try:
            joined = next(e for e in peer.events if e["event"] == "joined")
            paired = await peer.expect("paired", name=AGENT_NAME, timeout=60)
            connected = await peer.expect("connected", name=AGENT_NAME, timeout=30)
            agent_connected = await agent.expect("connected", name=name, timeout=30)
        except AssertionError as exc:
            raise BenchError(f"{scenario.key}: no connection: {exc}\n{tail(agent)}") from None
        self.check_path(scenario, "peer", connected["path"])
        self.check_path(scenario, "agent", agent_connected["path"])

        # The transfer: agent → peer through the agent's control socket.
        pids = {"sender": agent.pid, "receiver": peer.pid, "coturn": self.coturn.pid}
        ticks = {k: process_ticks(p) for k, p in pids.items()}
        busy = busy_ticks()
        t0 = time.time()
        send = await stage.agent_host.peerbeam(["--json", "send", str(self.payload), "--to", name],
                                               home=stage.home / "agent", env=stage.env)
        try:
            got = await peer.expect("received_file", timeout=self.timeout)
            ticks = {k: process_ticks(p) - ticks[k] for k, p in pids.items()}
            busy = busy_ticks() - busy
            sent = await send.expect("sent_file", timeout=60)
            code = await send.wait(30)
        except (AssertionError, TimeoutError) as exc:
            raise BenchError(f"{scenario.key}: the transfer failed: {exc}\n{tail(send)}\n{tail(peer)}") from None
        if code != 0:
            raise BenchError(f"{scenario.key}: `peerbeam send` exited with {code}\n{tail(send)}")
        received = Path(got["path"])
        if not received.is_relative_to(stage.home):
            raise BenchError(f"{scenario.key}: the file landed outside the benchmark's folder: {received}")
        on_disk = await asyncio.to_thread(sha256_of, received)
        if on_disk != self.sha256 or received.stat().st_size != self.size or sent["sha256"] != self.sha256:
            raise BenchError(f"{scenario.key}: received {received.stat().st_size} bytes with sha-256 {on_disk}, "
                             f"sent {self.size} with {self.sha256}")
        received.unlink()
        transfer_s = got["ts"] - t0

        # Still the same path after the transfer, with no drop in between? (A reconnect could
        # land elsewhere.) The control socket is a file: reachable from outside the namespace.
        status = await control.request(stage.home / f"phone-{n}" / "control.sock", {"cmd": "status"}, timeout=5)
        (live,) = status["connected"]
        self.check_path(scenario, "peer (after the transfer)", live["path"])
        drops = [e for p in (peer, agent) for e in p.events if e["event"] in ("disconnected", "waiting")
                 and e.get("name") in (name, AGENT_NAME)]
        if drops:
            raise BenchError(f"{scenario.key}: the connection dropped during the run: {drops}")

        # Unpair from the phone's side: the agent is told and forgets it (no reconnect attempts).
        unpair = await stage.peer_host.peerbeam(["--json", "unpair", AGENT_NAME], home=stage.home / f"phone-{n}")
        if await unpair.wait(30) != 0:
            raise BenchError(f"{scenario.key}: unpair failed\n{tail(unpair)}")
        try:
            await agent.expect("unpaired", name=name, timeout=30)
        except AssertionError as exc:
            raise BenchError(f"{scenario.key}: the agent was not told of the unpairing: {exc}") from None
        await peer.stop()
        self.long_lived.remove(peer.pid)

        turn = await self.coturn_account(scenario, log_start, [s.public_address for s in stage.sites])
        dropped = [NatLab.dropped_udp(s) - d for s, d in zip(stage.sites, drops_start)]
        if scenario.mode is not NatMode.OPEN and not all(dropped):
            raise BenchError(f"{scenario.key}: the NAT routers dropped no UDP ({dropped}): was the filter on?")
        return {
            "n": n, "size": self.size,
            "path": connected["path"], "agent_path": agent_connected["path"],
            "start_to_joined_ms": (joined["ts"] - t_spawn) * 1000,
            "join_to_paired_ms": (paired["ts"] - joined["ts"]) * 1000,
            "join_to_connected_ms": (connected["ts"] - joined["ts"]) * 1000,
            "start_to_connected_ms": (connected["ts"] - t_spawn) * 1000,
            "seconds": sent["seconds"], "mb_s": self.size / sent["seconds"] / 1e6,
            "recv_seconds": got["seconds"], "wall_seconds": transfer_s, "wall_mb_s": self.size / transfer_s / 1e6,
            "cpu_seconds": {k: v / TICKS for k, v in ticks.items()},
            "machine_busy": busy / TICKS / (CPUS * transfer_s),  # all CPUs, all processes, kernel included
            "coturn": turn, "udp_dropped_by_nat": dropped,
        }

    # -- the whole benchmark ----------------------------------------------------------------------

    async def bench(self) -> dict[str, Any]:
        args, say = self.args, self.say
        say(f"writing {args.size_mb} MB of random bytes…")
        self.sha256 = await asyncio.to_thread(make_payload, self.payload, self.size)
        self.nat = build_nat_lab(self.lab, with_lan=True)
        self.coturn = await start_coturn(self.nat.pub, self.tmp / "coturn", self.secret, max_bps=args.max_bps)
        self.long_lived.append(self.coturn.pid)
        say(f"coturn {self.coturn.pid} in pub {self.coturn.address}, max-bps {args.max_bps}")
        results: dict[str, list[dict[str, Any]]] = {}
        for i, key in enumerate(args.scenarios):
            results[key] = await self.scenario(SCENARIOS[key], FIRST_SIGNAL_PORT + i)
        errors = [line for line in self.coturn.log_lines() if "ERROR" in line]
        await self.coturn.stop()
        return {"size_bytes": self.size, "runs": args.runs, "max_bps": args.max_bps,
                "shipped_max_bps": shipped_max_bps(), "scenarios": args.scenarios, "machine": machine(),
                "coturn_version": coturn_version(), "coturn_errors": errors, "max_foreign": args.max_foreign,
                "samples": results,
                "summary": {key: summarise(runs) for key, runs in results.items()}}


def shipped_max_bps() -> int | None:
    for line in SHIPPED_CONF.read_text().splitlines():
        if line.startswith("max-bps="):
            return int(line.split("=", 1)[1])
    return None


def coturn_version() -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "coturn"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "join_to_connected_ms": stats([r["join_to_connected_ms"] for r in runs]),
        "start_to_connected_ms": stats([r["start_to_connected_ms"] for r in runs]),
        "join_to_paired_ms": stats([r["join_to_paired_ms"] for r in runs]),
        "rtt_ms": stats([float(r["path"].get("rtt_ms", "nan")) for r in runs]),
        "mb_s": stats([r["mb_s"] for r in runs]),
        "wall_mb_s": stats([r["wall_mb_s"] for r in runs]),
        # CPU-seconds used from spawning `send` to `received_file` (the agent's sha-256 of the
        # file included), per second of the transfer itself (`seconds`): % of one CPU.
        "cpu": {k: statistics.median(r["cpu_seconds"][k] / r["seconds"] for r in runs)
                for k in ("sender", "receiver", "coturn")},
        "machine_busy": statistics.median(r["machine_busy"] for r in runs),
        "foreign_cpu_max": max(r["foreign_cpu"] for r in runs),
        "paths": sorted({f"{r['path']['kind']}/{r['path']['transport']} "
                         f"{r['path']['local_type']}→{r['path']['remote_type']}" for r in runs}),
        "allocations": [r["coturn"]["allocations"] for r in runs],
        "relayed_mb": [round(r["coturn"]["relayed_bytes"] / 1e6, 1) for r in runs],
        "relayed_ratio": statistics.median(r["coturn"]["relayed_bytes"] for r in runs) / runs[0]["size"],
    }


def print_table(report: dict[str, Any]) -> None:
    def cell(s: dict[str, float], fmt: str) -> str:
        return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"

    m = report["machine"]
    header = ["scenario", "path seen (kind/transport, candidates)", "join → connected ms",
              "start → connected ms", "RTT ms", "MB/s (`seconds`)", "MB/s wall", "CPU snd/rcv/coturn", "all CPUs busy", "coturn relayed", "others"]
    rows = []
    for key in report["scenarios"]:
        s = report["summary"][key]
        rows.append([SCENARIOS[key].label, ", ".join(s["paths"]), cell(s["join_to_connected_ms"], ".0f"),
                     cell(s["start_to_connected_ms"], ".0f"), f"{s['rtt_ms']['median']:.2f}",
                     cell(s["mb_s"], ".1f"), cell(s["wall_mb_s"], ".1f"),
                     "/".join(f"{s['cpu'][k]:.0%}" for k in ("sender", "receiver", "coturn")),
                     f"{s['machine_busy']:.0%}", f"{s['relayed_ratio']:.2f}×",
                     f"≤{s['foreign_cpu_max']:.0%}"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = [False, False] + [True] * (len(header) - 2)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    print(f"\nmedian (min–max) of {report['runs']} runs per scenario, {report['size_bytes'] / 1e6:g} MB file "
          "agent → peer, all in one run of bench/relay.py\n")
    print(line(header))
    print("|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|")
    for r in rows:
        print(line(r))
    print()
    print("join → connected: the joiner's `joined` event (token accepted) to its `connected` event; "
          "start → connected: from spawning `peerbeam join` (Python start-up included).")
    print("MB/s (`seconds`): file size / `sent_file.seconds`; wall: spawning `peerbeam send` → `received_file`.")
    print(f"CPU: median CPU time of the sending agent, the receiving peer and coturn from spawning `send` to "
          f"`received_file`, per second of `seconds` (% of one CPU); all CPUs busy: the whole machine (every process and "
          f"the kernel) from spawning `send` to `received_file`, as a share of all {CPUS} CPUs; coturn relayed: median bytes coturn sent to peers (both relays, both directions, from its "
          f"log) / file size; others: the most other processes took of all CPUs during a run.")
    print(f"coturn {report['coturn_version']}, max-bps raised to {report['max_bps']:,} B/s per allocation "
          f"(shipped: {report['shipped_max_bps']:,}). Per run, coturn's log showed (allocations, MB relayed to "
          "peers): " + "; ".join(f"{k} " + " ".join(f"{a}/{mb:g}" for a, mb in zip(report['summary'][k]['allocations'],
                                                                                 report['summary'][k]['relayed_mb']))
                                 for k in report["scenarios"]))
    print(f"{m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}, aiortc {m['aiortc']}, "
          f"aioice {m['aioice']}, uvloop {m['uvloop']}")
    if report["coturn_errors"]:
        print(f"coturn logged errors: {report['coturn_errors'][:5]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="pairings + transfers per scenario (median shown)")
    parser.add_argument("--size-mb", type=int, default=50, help="file size in MB (10^6 bytes)")
    parser.add_argument("--scenarios", type=parse_list(tuple(SCENARIOS)), default=list(SCENARIOS))
    parser.add_argument("--max-bps", type=int, default=DEFAULT_MAX_BPS,
                        help="coturn's max-bps per allocation, bytes/s (the shipped file says 3 MB/s)")
    parser.add_argument("--quiet-wait", type=float, default=300,
                        help="seconds each run may wait for other processes to leave the CPUs idle")
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="a run during which other processes took more of the CPUs than this is run again")
    parser.add_argument("--retries", type=int, default=2, help="how often a disturbed run is run again")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/relay.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    if args.runs < 1 or args.size_mb < 1:
        parser.error("--runs and --size-mb must be at least 1")
    if os.environ.pop("PEERBEAM_NO_UVLOOP", None) is not None:
        print("PEERBEAM_NO_UVLOOP ignored: this benchmark measures the default (uvloop).", file=sys.stderr)

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # as Ctrl-C: the finally clauses below tear the lab down

    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    report = run_in_lab("pb-relay-", lambda lab, tmp: Bench(lab, tmp, args, say).bench())
    if report is None:
        return 1
    report["elapsed_s"] = time.monotonic() - started
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        print(f"benchmark took {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
