"""Same Wi-Fi, instant (issue 5): LAN bulk transfer and LAN connect times.

Run as root from the repository root (magic-wormhole comes from the `bench` extra:
`.venv/bin/pip install -e '.[bench]'`; `nc` is Debian's netcat-openbsd):

    .venv/bin/python bench/lan.py [--size-mb 500] [--runs 3] [--cases fast,cold,channel,wormhole,nc]
                                  [--connects 20] [--starts 10] [--json]

It builds the LAN lab of the tests (tests/lan_lab.py: lan1 198.51.100.1, lan2 .2, lan3 .3 on one
bridge, no route anywhere else) and always removes it. `--size-mb` MB (10^6 bytes) of random
bytes go from lan1 to lan2, `--runs` times per case, all cases in the same invocation:

* fast: `peerbeam agent` in lan1 (embedded server, LAN port advertised), `peerbeam connect` in
  lan2 already connected over the LAN (found by mDNS; its pairing record points at a dead
  server, so no server is used), then `peerbeam send FILE` in lan1. Timed from starting that
  command (Python start-up, the sender's sha-256 of the whole file, offer, accept) to lan2's
  `received_file` (every byte written, hash checked, `.part` renamed). The `sent_file.seconds`
  the sender reports (accept to done) is shown too;
* cold: the same, but from starting `peerbeam connect` in lan2 (mDNS, TCP, handshake, ICE,
  DTLS, SCTP), then `peerbeam send` as soon as it is connected: the whole of what a user does;
* channel: `fast` with the agent restarted with `--no-fast-path` (hidden flag): the same
  session setup, file frames on the aiortc data channel instead;
* wormhole: magic-wormhole with its mailbox server and transit relay started in lan3; `wormhole
  send --code C FILE` in lan1 and `wormhole receive --accept-file -o OUT C` in lan2, both
  started at once; timed until the receiver exits (the file is written; wormhole hashes it on
  both sides while it flows). Whether transit went direct or through the relay is recorded;
* nc: `nc -l` in lan2 (already listening) and `nc -N` in lan1: raw TCP, no encryption, no hash;
  timed until the receiver exits.

Part 2, connect times with no server, `--connects` runs each: bench/lan_driver.py in lan2
(peer_agent imported once) times a cold mDNS discovery alone, then a fresh Node from nothing
to `connected` and to the first message's delivery receipt; and `peerbeam connect` as a process
(Python start-up included) to its `connected` line.

Part 3, `--starts` times: `peerbeam agent` started in lan1 until its "lan" line (listening and
advertised: mDNS probing done) and until a browser already running in lan2 sees the service;
then stopped (SIGTERM) until that browser sees it withdrawn (goodbye packets).

The machine may be shared: each bulk run waits for a quiet machine first and records the CPU
other processes took (bench/throughput.py's CpuMeter).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import msgspec

from bench.pairing import machine
from bench.throughput import CpuMeter, make_payload, wait_quiet
from crypto.records import decode_records, encode_records
from tests.lab import Host, Lab
from tests.lan_lab import LanLab, build_lan_lab
from tests.peer_process import PeerProcess

VENV = REPO_ROOT / ".venv" / "bin"
DEAD_SERVER = "http://198.51.100.1:9"  # nothing listens there
MAILBOX_PORT, TRANSIT_PORT, NC_PORT = 4000, 4001, 5001
MDNS_PEER = REPO_ROOT / "tests" / "integration" / "mdns_peer.py"

ROWS = [
    ("fast", "peerbeam, LAN fast path (connected)"),
    ("cold", "peerbeam, LAN fast path (connect + send)"),
    ("channel", "peerbeam, data channel (connected)"),
    ("wormhole", "magic-wormhole 0.24 (send + receive)"),
    ("nc", "nc, raw TCP (no crypto, no hash)"),
]


def set_server(home: Path, server: str) -> None:
    path = home / "pairings.json"
    path.write_bytes(encode_records([msgspec.structs.replace(r, server=server)
                                     for r in decode_records(path.read_bytes())]))


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p90": p90, "min": ordered[0], "max": ordered[-1],
            "n": len(ordered)}


class Bench:
    def __init__(self, lan: LanLab, tmp: Path, args: argparse.Namespace) -> None:
        self.lan, self.tmp, self.args = lan, tmp, args
        self.size = args.size_mb * 1_000_000
        self.payload = tmp / "payload.bin"
        self.sha256 = ""
        self.agent: PeerProcess | None = None
        self.peer: PeerProcess | None = None
        self.long_lived: list[int] = []
        self.timeout = 120 + self.size / 5e6

    def say(self, text: str) -> None:
        if not self.args.json:
            print(text, file=sys.stderr, flush=True)

    async def peerbeam(self, host: Host, home: str, *args: str) -> PeerProcess:
        return await host.peerbeam(["--json", *args], home=self.tmp / home)

    # -- peerbeam setup -------------------------------------------------------------------------

    async def start_agent(self, *extra: str) -> dict[str, Any]:
        self.agent = await self.peerbeam(self.lan.lan1, "pc", "agent", "--name", "Desk", "--auto-accept",
                                         "--downloads", str(self.tmp / "pc-dl"), "--qr-png",
                                         str(self.tmp / "pc" / "qr.png"), *extra)
        self.long_lived.append(self.agent.pid)
        return await self.agent.expect("lan", timeout=30)

    async def stop_agent(self) -> None:
        assert self.agent is not None
        await self.agent.stop()
        self.long_lived.remove(self.agent.pid)
        self.agent = None

    async def pair(self) -> None:
        await self.start_agent()
        assert self.agent is not None
        url = (await self.agent.expect("qr"))["url"]
        joiner = await self.peerbeam(self.lan.lan2, "phone", "join", url, "--name", "Phone", "--auto-accept",
                                     "--downloads", str(self.tmp / "phone-dl"))
        await joiner.expect("connected", name="Desk", timeout=30)
        await joiner.stop()
        set_server(self.tmp / "phone", DEAD_SERVER)

    async def connect_peer(self) -> tuple[PeerProcess, dict[str, Any]]:
        peer = await self.peerbeam(self.lan.lan2, "phone", "connect", "Desk", "--auto-accept", "--timeout", "60",
                                   "--downloads", str(self.tmp / "phone-dl"))
        connected = await peer.expect("connected", name="Desk", timeout=60)
        if connected["path"].get("rendezvous") != "lan":
            raise RuntimeError(f"not connected over the LAN: {connected}")
        return peer, connected

    async def ensure_peer(self) -> None:
        if self.peer is None or self.peer.returncode is not None:
            self.peer, _ = await self.connect_peer()
            self.long_lived.append(self.peer.pid)

    async def drop_peer(self) -> None:
        if self.peer is not None:
            await self.peer.stop()
            if self.peer.pid in self.long_lived:
                self.long_lived.remove(self.peer.pid)
            self.peer = None

    async def send(self, receiver: PeerProcess) -> dict[str, Any]:
        started = time.time()
        sender = await self.peerbeam(self.lan.lan1, "pc", "send", str(self.payload), "--to", "Phone")
        if await sender.wait(timeout=self.timeout) != 0:
            raise RuntimeError(f"send failed: {sender.stdout_tail}\n{sender.stderr_tail}")
        got = await receiver.expect("received_file", timeout=30)
        sent = await sender.expect("sent_file")
        if got["sha256"] != self.sha256 or sent["via"] != got["via"]:
            raise RuntimeError(f"bad transfer: {got} {sent}")
        Path(got["path"]).unlink()
        return {"seconds": got["ts"] - started, "sent_seconds": sent["seconds"], "via": got["via"]}

    async def fast(self) -> dict[str, Any]:
        await self.ensure_peer()
        assert self.peer is not None
        return await self.send(self.peer)

    async def cold(self) -> dict[str, Any]:
        await self.drop_peer()
        started = time.time()
        peer, connected = await self.connect_peer()
        connect_s = connected["ts"] - started
        try:
            result = await self.send(peer)
        finally:
            await peer.stop()
        result["seconds"] += connect_s
        result["connect_seconds"] = connect_s
        return result

    # -- the others -----------------------------------------------------------------------------

    async def start_wormhole_servers(self) -> None:
        lan3 = self.lan.lan3
        work = self.tmp / "wormhole-srv"
        work.mkdir()
        for plugin, port in (("wormhole-mailbox", MAILBOX_PORT), ("transitrelay", TRANSIT_PORT)):
            server = await lan3.spawn([str(VENV / "twist"), plugin, f"--port=tcp:{port}:interface={lan3.address}"],
                                      cwd=work)
            self.long_lived.append(server.pid)
        for port in (MAILBOX_PORT, TRANSIT_PORT):
            await self.listening(lan3, port)

    async def listening(self, host: Host, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while f":{port} " not in host.run(["ss", "-ltnH", f"sport = :{port}"]).stdout + " ":
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} in {host.role}")
            await asyncio.sleep(0.05)

    def wormhole_args(self) -> list[str]:
        lan3 = self.lan.lan3.address
        return [str(VENV / "wormhole"), "--relay-url", f"ws://{lan3}:{MAILBOX_PORT}/v1",
                "--transit-helper", f"tcp:{lan3}:{TRANSIT_PORT}"]

    async def wormhole(self) -> dict[str, Any]:
        code = f"{secrets.randbelow(900) + 100}-bench-{secrets.token_hex(4)}"
        out = self.tmp / "wormhole-out.bin"
        out.unlink(missing_ok=True)
        started = time.time()
        sender = await self.lan.lan1.spawn([*self.wormhole_args(), "send", "--hide-progress", "--code", code,
                                            str(self.payload)])
        receiver = await self.lan.lan2.spawn([*self.wormhole_args(), "receive", "--accept-file", "--hide-progress",
                                              "-o", str(out), code])
        if await receiver.wait(timeout=self.timeout) != 0:
            raise RuntimeError(f"wormhole receive failed: {receiver.stderr_tail}")
        seconds = time.time() - started
        await sender.wait(timeout=30)
        if make_digest(out) != self.sha256:
            raise RuntimeError("wormhole: the file differs")
        out.unlink()
        said = "\n".join([*receiver.stderr_lines, *receiver.stdout_lines])
        via = "relay" if "relay" in said.lower() else "direct"
        return {"seconds": seconds, "via": via}

    async def nc(self) -> dict[str, Any]:
        out = self.tmp / "nc-out.bin"
        receiver = await self.lan.lan2.spawn(["sh", "-c", f"exec nc -l {NC_PORT} > {out}"])
        await self.listening(self.lan.lan2, NC_PORT)
        started = time.time()
        sender = await self.lan.lan1.spawn(["sh", "-c", f"exec nc -N {self.lan.lan2.address} {NC_PORT} < {self.payload}"])
        if await receiver.wait(timeout=self.timeout) != 0:
            raise RuntimeError(f"nc failed: {receiver.stderr_tail}")
        seconds = time.time() - started
        await sender.wait(timeout=30)
        if out.stat().st_size != self.size:
            raise RuntimeError("nc: short file")
        out.unlink()
        return {"seconds": seconds, "via": "tcp"}

    # -- runs -----------------------------------------------------------------------------------

    async def measured(self, case: str) -> dict[str, Any]:
        """One run of `case` on a quiet machine; again (up to --retries times) when other
        processes took more than --max-foreign of the CPUs meanwhile (the machine is shared)."""
        for attempt in range(self.args.retries + 1):
            await wait_quiet(self.args.quiet_wait, self.long_lived, self.say)
            meter = CpuMeter(self.long_lived)
            result: dict[str, Any] = await getattr(self, case)()
            result["foreign_cpu"] = round(meter.foreign(), 3)
            result["mb_s"] = self.size / result["seconds"] / 1e6
            result["attempts"] = attempt + 1
            self.say(f"  {case}: {result['seconds']:.2f} s, {result['mb_s']:.0f} MB/s ({result['via']}), "
                     f"others took {result['foreign_cpu']:.0%} of the CPUs")
            if result["foreign_cpu"] <= self.args.max_foreign:
                break
        return result

    async def bulk(self) -> dict[str, list[dict[str, Any]]]:
        self.say(f"writing {self.args.size_mb} MB of random bytes…")
        self.sha256 = await asyncio.to_thread(make_payload, self.payload, self.size)
        # Its dirty pages on disk now, not during the first runs (the kernel would throttle
        # the writes of whichever case came first).
        await asyncio.to_thread(os.sync)
        cases = self.args.cases.split(",")
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
        if "wormhole" in cases:
            await self.start_wormhole_servers()
        # Interleaved, one run of each case per round, so that a slow moment hits all of them;
        # the data-channel case needs the agent restarted without the fast path, so it comes
        # at the end of each round and the agent is restarted back after it.
        for round_no in range(self.args.runs):
            self.say(f"round {round_no + 1} of {self.args.runs}")
            for case in [c for c in cases if c != "channel"]:
                results[case].append(await self.measured(case))
            if "channel" in cases:
                await self.drop_peer()
                await self.stop_agent()
                await self.start_agent("--no-fast-path")
                results["channel"].append(await self.measured("fast"))
                await self.drop_peer()
                await self.stop_agent()
                await self.start_agent()
        self.payload.unlink()
        return results

    async def connects(self) -> dict[str, Any]:
        await self.drop_peer()
        driver = await self.lan.lan2.spawn([sys.executable, str(REPO_ROOT / "bench" / "lan_driver.py"),
                                            str(self.tmp / "phone"), "Desk", str(self.args.connects)],
                                           env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
        runs = []
        for _ in range(self.args.connects):
            result = await driver.expect("result", timeout=60)
            if not result["ok"] or result["path"].get("rendezvous") != "lan":
                raise RuntimeError(f"connect run failed: {result}")
            runs.append(result)
        await driver.wait(timeout=30)
        spawned = []
        for _ in range(self.args.connects):
            started = time.time()
            peer, connected = await self.connect_peer()
            spawned.append((connected["ts"] - started) * 1000)
            await peer.stop()
        return {"found_ms": stats([r["found_ms"] for r in runs]),
                "connected_ms": stats([r["connected_ms"] for r in runs]),
                "first_byte_ms": stats([r["first_byte_ms"] for r in runs]),
                "process_connected_ms": stats(spawned)}

    async def starts(self) -> dict[str, Any]:
        await self.drop_peer()
        await self.stop_agent()
        browser = await self.lan.lan2.spawn([sys.executable, str(MDNS_PEER), "browse", secrets.token_hex(32)],
                                            env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
        await browser.expect("browsing")
        advertised, seen, withdrawn = [], [], []
        for _ in range(self.args.starts):
            wall0, mono0 = time.time(), time.monotonic()
            lan = await self.start_agent()
            advertised.append((lan["ts"] - wall0) * 1000)
            added = await browser.expect("added", name=lan["service"], timeout=30)
            seen.append((added["mono"] - mono0) * 1000)
            stop_at = time.monotonic()
            await self.stop_agent()
            removed = await browser.expect("removed", name=lan["service"], timeout=30)
            withdrawn.append((removed["mono"] - stop_at) * 1000)
        await browser.stop()
        return {"advertised_ms": stats(advertised), "seen_ms": stats(seen), "withdrawn_ms": stats(withdrawn)}


def make_digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def print_tables(report: dict[str, Any]) -> None:
    bulk = report.get("bulk", {})
    if bulk:
        print(f"\n{report['size_mb']} MB lan1 → lan2, {report['runs']} run(s) each, median (min–max):\n")
        print("| case | seconds | MB/s | others' CPU | carried by |")
        print("|---|---:|---:|---:|---|")
        for key, label in ROWS:
            runs = bulk.get(key)
            if not runs:
                continue
            seconds = [r["seconds"] for r in runs]
            rates = [r["mb_s"] for r in runs]
            extra = ""
            if key in ("fast", "channel"):
                extra = f"; accept→done {statistics.median(r['sent_seconds'] for r in runs):.2f} s"
            if key == "cold":
                extra = f"; of which connect {statistics.median(r['connect_seconds'] for r in runs):.2f} s"
            foreign = max(r["foreign_cpu"] for r in runs)
            print(f"| {label} | {statistics.median(seconds):.2f} ({min(seconds):.2f}–{max(seconds):.2f}) | "
                  f"{statistics.median(rates):.0f} | ≤ {foreign:.0%} | {runs[0]['via']}{extra} |")
    for part, rows in (("connects", (("found_ms", "cold mDNS discovery alone (in-process)"),
                                     ("connected_ms", "fresh Node → connected (in-process)"),
                                     ("first_byte_ms", "fresh Node → first message delivered (in-process)"),
                                     ("process_connected_ms", "`peerbeam connect` process → connected"))),
                       ("starts", (("advertised_ms", "`peerbeam agent` process → advertised"),
                                   ("seen_ms", "`peerbeam agent` process → seen by lan2"),
                                   ("withdrawn_ms", "SIGTERM → withdrawn at lan2")))):
        if part not in report:
            continue
        print(f"\n| ms | median | p90 | min | max | n |\n|---|---:|---:|---:|---:|---:|")
        for key, label in rows:
            s = report[part][key]
            print(f"| {label} | {s['median']:.1f} | {s['p90']:.1f} | {s['min']:.1f} | {s['max']:.1f} | {s['n']} |")


async def main(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {"machine": machine(), "size_mb": args.size_mb, "runs": args.runs,
                              "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory(prefix="pb-bench-lan-") as tmp_dir:
        tmp = Path(tmp_dir)
        async with Lab() as lab:
            lan = build_lan_lab(lab)
            bench = Bench(lan, tmp, args)
            await bench.pair()
            if args.cases:
                report["bulk"] = await bench.bulk()
            if args.connects:
                report["connects"] = await bench.connects()
            if args.starts:
                report["starts"] = await bench.starts()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)


if __name__ == "__main__":
    if os.geteuid() != 0 or shutil.which("ip") is None:
        sys.exit("run as root: the benchmark builds network namespaces")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default="fast,cold,channel,wormhole,nc")
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--quiet-wait", type=float, default=30.0)
    parser.add_argument("--max-foreign", type=float, default=0.10,
                        help="share of the CPUs other processes may take during a run before it is run again")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    asyncio.run(main(parser.parse_args()))
