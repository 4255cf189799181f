"""Where a bare aiortc data-channel transfer spends its CPU: py-spy on both ends.

Run as root from the repository root (py-spy from PyPI: `.venv/bin/pip install py-spy`):

    .venv/bin/python bench/profile_transfer.py [--loop uvloop] [--seconds 20] [--tune rcvbuf]
                                               [--native] [--keep DIR]

It starts one bare transfer of bench/throughput.py (pc sends to phone, same lab, same driver,
same 64 KiB messages and flow control), big enough to outlast the sampling, and from the
receiver's first byte records both processes with ``py-spy record`` for
``--seconds`` at 200 Hz. Then it prints, per end, how busy the process was (samples taken over
samples possible: py-spy leaves out idle samples) and where the time went: by layer (the
file of the innermost frame of ours/aiortc/aioice/asyncio that is on the stack) and the top
functions by self and by inclusive time. ``--keep DIR`` keeps the raw stacks (collapsed
format, one "frame;frame;... count" per line) for flamegraph tools.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError
from bench.throughput import Bench, CpuMeter, make_payload, wait_quiet
from tests.lab import Lab

PY_SPY = REPO_ROOT / ".venv" / "bin" / "py-spy"
RATE_HZ = 200
# Layers, by the file a frame is in; the innermost matching frame of a stack names its layer.
LAYERS = [
    ("SCTP (aiortc rtcsctptransport)", "rtcsctptransport.py"),
    ("DTLS + SRTP demux (aiortc rtcdtlstransport)", "rtcdtlstransport.py"),
    ("data channel (aiortc rtcdatachannel)", "rtcdatachannel.py"),
    ("ICE (aioice)", "aioice/"),
    ("asyncio UDP transport", "selector_events.py"),
    ("event emitter (pyee)", "pyee/"),
    ("benchmark driver (read file, hash)", "throughput_driver.py"),
    ("asyncio loop (events, tasks)", "asyncio/"),
]


def frame_file(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    return frame.rsplit("(", 1)[-1].rstrip(")") if "(" in frame else frame


def summarise(raw: Path, seconds: float, top: int = 12) -> dict[str, Any]:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks) or 1
    layers: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        names = [f.rsplit(":", 1)[0] + ")" if "(" in f else f for f in frames]  # drop line numbers
        self_time[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
        layer = "other (native, C extensions: OpenSSL, hashlib, uvloop)"
        for frame in reversed(frames):
            hit = next((label for label, needle in LAYERS if needle in frame_file(frame)), None)
            if hit is not None:
                layer = hit
                break
        layers[layer] += n
    share = {k: v / total for k, v in layers.most_common()}
    return {"busy": total / (seconds * RATE_HZ), "samples": total, "layers": share,
            "self": [(k, v / total) for k, v in self_time.most_common(top)],
            "inclusive": [(k, v / total) for k, v in inclusive.most_common(top * 2)]}


async def profile(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    bench_args = argparse.Namespace(size_mb=args.size_mb, runs=1, loops=[args.loop], cases=["bare"],
                                    tune=args.tune, json=False)
    bench = Bench(lab, tmp, bench_args, lambda _: None)
    print(f"writing {args.size_mb} MB of random bytes…", flush=True)
    bench.sha256 = await asyncio.to_thread(make_payload, bench.payload, bench.size)
    await wait_quiet(300, [], print)
    listen = f"{bench.phone.address}:{next(bench.ports)}"
    extra = ["--tune", args.tune] if args.tune else []
    recv = await bench.script(bench.phone, "rtc-recv", "--listen", listen, "--size", str(bench.size),
                              "--loop", args.loop, *extra)
    await recv.expect("listening", timeout=30)
    send = await bench.script(bench.pc, "rtc-send", "--connect", listen, "--file", str(bench.payload),
                              "--loop", args.loop, *extra)
    await recv.expect("receiving", timeout=60)
    meter = CpuMeter([send.pid, recv.pid])  # py-spy itself is a reaped child: counted as ours
    outputs = {"sender": tmp / "sender.txt", "receiver": tmp / "receiver.txt"}
    pids = {"sender": send.pid, "receiver": recv.pid}
    spies = [await asyncio.create_subprocess_exec(
        str(PY_SPY), "record", "--pid", str(pids[side]), "--duration", str(args.seconds),
        "--rate", str(RATE_HZ), "--format", "raw", *(["--native"] if args.native else []),
        # Without pausing the process a sample may catch a stack half-changed: it is cheaper,
        # but inclusive shares come out low. --native always pauses (to unwind C stacks).
        *(["--nonblocking"] if args.nonblocking and not args.native else []),
        "--output", str(outputs[side]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for side in outputs]
    for spy in spies:
        _, err = await spy.communicate()
        if spy.returncode:
            raise BenchError(f"py-spy failed: {err.decode(errors='replace')}")
    foreign = meter.foreign()
    got = await recv.expect("received", timeout=bench.timeout)
    sent = await send.expect("sent", timeout=30)
    result = {"loop": args.loop, "tune": args.tune, "seconds": args.seconds, "foreign_cpu": foreign,
              "mb_s": bench.size / (got["t_end"] - sent["t0"]) / 1e6,
              "ends": {side: summarise(path, args.seconds) for side, path in outputs.items()}}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for side, path in outputs.items():
            shutil.copy(path, args.keep / f"{args.loop}{'-' + args.tune if args.tune else ''}-{side}.txt")
    return result


def print_report(result: dict[str, Any]) -> None:
    print(f"\nloop {result['loop']}{', tune ' + result['tune'] if result['tune'] else ''}: "
          f"{result['mb_s']:.1f} MB/s over the whole transfer (sampled for {result['seconds']} s; other "
          f"processes took {result['foreign_cpu']:.0%} of the CPUs meanwhile)")
    for side, s in result["ends"].items():
        print(f"\n== {side}: busy {s['busy']:.0%} of one CPU ({s['samples']} samples)")
        print("  by layer:")
        for layer, part in s["layers"].items():
            print(f"    {part:6.1%}  {layer}")
        print("  self time:")
        for name, part in s["self"]:
            print(f"    {part:6.1%}  {name}")
        print("  inclusive:")
        for name, part in s["inclusive"]:
            print(f"    {part:6.1%}  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=None, help="default: enough for --seconds at 45 MB/s")
    parser.add_argument("--tune", default="", help="as bench/throughput.py --tune")
    parser.add_argument("--native", action="store_true", help="also sample C frames (py-spy --native)")
    parser.add_argument("--nonblocking", action="store_true", help="py-spy --nonblocking (less overhead, torn stacks)")
    parser.add_argument("--keep", type=Path, default=None, help="copy the raw stacks into this folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/profile_transfer.py needs root (namespaces, ptrace).", file=sys.stderr)
        return 2
    if not PY_SPY.exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    if args.size_mb is None:
        args.size_mb = (args.seconds + 10) * 45
    tmp = Path(tempfile.mkdtemp(prefix="pb-profile-"))
    lab = Lab()
    try:
        async def run() -> dict[str, Any]:
            try:
                return await profile(lab, tmp, args)
            finally:
                await lab.aclose()

        result = asyncio.run(run())
    except (BenchError, AssertionError) as exc:
        print(f"profiling failed: {exc}", file=sys.stderr)
        return 1
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
