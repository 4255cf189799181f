"""Beam-to-card benchmark: `peerbeam send URL` until the phone has the card's thumbnails,
next to sending the page's original photos as files, measured in the same run.

Run as root from the repository root:

    .venv/bin/python bench/beam_card.py [--runs 10] [--warmup 1] [--images 20] [--json]

It builds its own lab (tests.lab: "pc" 198.51.100.1 and "phone" 198.51.100.2, one veth pair,
no link to the host network) and always tears it down. Before the lab, ``--images`` distinct
photo-like JPEGs (1600x1200 to 3000x2000, shapes on a rotated gradient with noise, quality 90;
pairwise dHash distance checked, so the card's de-duplication keeps all of them) and a page
showing them are written to a temp dir. Then:

* pc:    `peerbeam signal`, `peerbeam agent --auto-accept`, and bench/beam_card_site.py serving
  the page on 127.0.0.1:8080 inside pc (a local page: the agent fetches it there);
* phone: `peerbeam join LINK --auto-accept --downloads DIR`, paired through the agent's QR.

Each iteration does four runs, waiting for each to finish before the next:

1. ours, CLI: `peerbeam --json send URL` started in pc; the clock runs from just before the
   command is spawned to the ``ts`` of the phone's ``page`` event (card and thumbnails saved);
2. baseline, CLI: `peerbeam --json send 01.jpg ... 20.jpg` (the same photos, as files), from
   just before the command is spawned to the ``ts`` of the phone's last ``received_file``;
3. and 4.: the same two requests written straight to the agent's control socket by this
   process (what the browser extension's native host does): no CLI start-up.

All clocks are ``time.time()`` on the same machine. The agent's ``beamed`` event (its ``seconds``
is image fetch + thumbnails + send) and the site's per-response times split ours into phases.
Received files are deleted after each baseline run, so that every run writes the same names.
The first ``--warmup`` iterations are run but not counted. Before the lab starts, the same
photos are thumbnailed in this process with ``make_thumbnail`` (in worker threads, as the agent
does, and one after another): how much of the agent's time is decoding and encoding.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import BenchError, run_in_lab
from bench.pairing import machine, summary
from peer_agent import control
from peer_agent.images import ImageLimits, dhash, make_thumbnail
from tests.lab import Host, Lab
from tests.peer_process import PeerProcess

SIGNAL_PORT = 8443
SITE_PORT = 8080
# Landscape photo sizes between 1600x1200 and 3000x2000, cycled.
SIZES = [(1600, 1200), (3000, 2000), (2048, 1536), (2400, 1600), (2560, 1920), (2000, 1500),
         (2800, 1867), (1920, 1280)]
EVENT_TIMEOUT = 120.0
RUNS = [  # (key, label)
    ("ours_cli", "ours: send URL → card"),
    ("base_cli", "baseline: send {n} JPEGs"),
    ("ours_sock", "ours, control socket"),
    ("base_sock", "baseline, control socket"),
]
OURS_PHASES = [  # (key, what happens between the previous mark and this one)
    ("html_requested", "start → page requested (start-up, control socket)"),
    ("build_started", "→ page fetched and harvested"),
    ("images_fetched", "→ last photo served"),
    ("beamed", "→ thumbnails made, frames sent"),
    ("page_saved", "→ card received and saved on the phone"),
]
BASE_PHASES = [
    ("first_incoming", "start → first file offered (start-up, hashing)"),
    ("last_received", "→ all files received, checked and saved"),
]

PHASES = {"ours_cli": OURS_PHASES, "base_cli": BASE_PHASES, "ours_sock": OURS_PHASES, "base_sock": BASE_PHASES}


# ---- the page ------------------------------------------------------------------------------

def photo(index: int, seed: int) -> tuple[bytes, int]:
    """A photo-sized JPEG (noise keeps it from compressing like a drawing) and its dHash."""
    rng = random.Random(seed * 1000 + index)
    width, height = SIZES[index % len(SIZES)]
    image = Image.linear_gradient("L").rotate(rng.randrange(360)).resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(width // 75, width // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    image = Image.blend(image, noise, 0.15)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue(), dhash(image)


def write_site(root: Path, count: int, seed: int) -> list[Path]:
    """page.html and photos/NN.jpg under ``root``; returns the photos' paths."""
    (root / "photos").mkdir(parents=True)
    made = [photo(i, seed) for i in range(count)]
    limit = ImageLimits().dhash_distance
    for (a, ha), (b, hb) in itertools.combinations(enumerate(made), 2):
        if (ha[1] ^ hb[1]).bit_count() <= limit:
            raise BenchError(f"photos {a + 1} and {b + 1} look alike (dHash); try another --seed")
    paths = []
    figures = []
    for n, (data, _) in enumerate(made, 1):
        path = root / "photos" / f"{n:02d}.jpg"
        path.write_bytes(data)
        paths.append(path)
        figures.append(f'<figure><img src="photos/{n:02d}.jpg" alt="Photo {n}"><figcaption>Photo {n}'
                       "</figcaption></figure>")
    (root / "page.html").write_text(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Holiday photos</title></head><body>"
        f"<h1>Holiday photos</h1><p>{count} pictures.</p>{''.join(figures)}</body></html>\n")
    return paths


def thumbnailing_alone(photos: list[Path], rounds: int = 3) -> dict[str, float]:
    """make_thumbnail on the photos in this process, as fetch_thumbnails runs it (one worker
    thread each, through asyncio.to_thread) and one after another: the share of the agent's
    "thumbnails made" phase that is decoding and encoding."""
    limits = ImageLimits()
    datas = [p.read_bytes() for p in photos]

    async def threaded() -> None:
        await asyncio.gather(*(asyncio.to_thread(make_thumbnail, data, limits) for data in datas))

    def timed(work: Callable[[], object]) -> float:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            work()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    return {"threads_ms": timed(lambda: asyncio.run(threaded())),
            "serial_ms": timed(lambda: [make_thumbnail(data, limits) for data in datas])}


# ---- one run -------------------------------------------------------------------------------

@dataclass
class Rig:
    pc: Host
    agent: PeerProcess
    phone: PeerProcess
    site: PeerProcess
    agent_home: Path
    downloads: Path
    url: str
    photos: list[Path]


def ms(later: float, earlier: float) -> float:
    return (later - earlier) * 1000


async def card_run(rig: Rig, start: Callable[[], Awaitable[Callable[[], Awaitable[None]]]]) -> dict[str, Any]:
    """Beam the page; ``start`` begins the request and returns how to wait for its end."""
    t0 = time.time()
    finish = await start()
    page = await rig.phone.expect("page", timeout=EVENT_TIMEOUT)
    beamed = await rig.agent.expect("beamed", timeout=EVENT_TIMEOUT)
    await finish()
    html = await rig.site.expect("served", path="/page.html", timeout=EVENT_TIMEOUT)
    served = [await rig.site.expect("served", path=f"/photos/{p.name}", timeout=EVENT_TIMEOUT) for p in rig.photos]
    if len(page["thumbs"]) != len(rig.photos) or page["card"] != beamed["card"]:
        raise BenchError(f"the card has {len(page['thumbs'])} thumbnails, not {len(rig.photos)}: {beamed}")
    marks = {"html_requested": html["start"], "build_started": beamed["ts"] - beamed["seconds"],
             "images_fetched": max(s["end"] for s in served), "beamed": beamed["ts"], "page_saved": page["ts"]}
    return {"ms": ms(page["ts"], t0), "bytes": sum(t["size"] for t in page["thumbs"]),
            "marks_ms": {k: ms(v, t0) for k, v in marks.items()}}


async def files_run(rig: Rig, start: Callable[[], Awaitable[Callable[[], Awaitable[None]]]]) -> dict[str, Any]:
    """Send the photos as files; ``start`` as in card_run."""
    t0 = time.time()
    finish = await start()
    got = [await rig.phone.expect("received_file", file=p.name, timeout=EVENT_TIMEOUT) for p in rig.photos]
    first = await rig.phone.expect("incoming", file=rig.photos[0].name, timeout=EVENT_TIMEOUT)
    await finish()
    for p, event in zip(rig.photos, got):
        if event["size"] != p.stat().st_size:
            raise BenchError(f"{p.name} arrived with {event['size']} bytes, not {p.stat().st_size}")
        Path(event["path"]).unlink()  # the next run writes the same names again
    last = max(e["ts"] for e in got)
    return {"ms": ms(last, t0), "bytes": sum(e["size"] for e in got),
            "marks_ms": {"first_incoming": ms(first["ts"], t0), "last_received": ms(last, t0)}}


def via_cli(rig: Rig, *targets: str) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start() -> Callable[[], Awaitable[None]]:
        proc = await rig.pc.peerbeam(["--json", "send", *targets], home=rig.agent_home)

        async def finish() -> None:
            if await proc.wait(timeout=EVENT_TIMEOUT) != 0:
                raise BenchError(f"peerbeam send failed:\n{proc.stdout_tail}\n{proc.stderr_tail}")
        return finish
    return start


def via_socket(rig: Rig, request: dict[str, Any]) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start() -> Callable[[], Awaitable[None]]:
        task = asyncio.create_task(control.request(rig.agent_home / "control.sock", request, timeout=None,
                                                   on_event=lambda _: None))

        async def finish() -> None:
            reply = await asyncio.wait_for(task, EVENT_TIMEOUT)
            if not reply.get("ok"):
                raise BenchError(f"control request failed: {reply}")
        return finish
    return start


# ---- the bench -----------------------------------------------------------------------------

async def setup(lab: Lab, tmp: Path, photos: list[Path]) -> Rig:
    pc, phone_host = lab.lan_pair()
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(SIGNAL_PORT)],
                               home=tmp / "server")
    origin = (await server.expect("server", timeout=30))["url"]
    agent_home = tmp / "agent"
    agent = await pc.peerbeam(["--json", "agent", "--server", origin, "--name", "Bench PC", "--auto-accept",
                               "--downloads", str(tmp / "agent-dl")], home=agent_home)
    link = (await agent.expect("qr", timeout=60))["url"]
    site = await pc.spawn([sys.executable, "bench/beam_card_site.py", str(tmp / "site"), "127.0.0.1",
                           str(SITE_PORT)], env={"PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT)
    site_url = (await site.expect("site", timeout=30))["url"]
    downloads = tmp / "phone-dl"
    phone = await phone_host.peerbeam(["--json", "join", link, "--name", "Bench Phone", "--auto-accept",
                                       "--downloads", str(downloads)], home=tmp / "phone")
    await agent.expect("connected", name="Bench Phone", timeout=60)
    await phone.expect("connected", name="Bench PC", timeout=60)
    return Rig(pc, agent, phone, site, agent_home, downloads, f"{site_url}/page.html", photos)


async def bench(lab: Lab, tmp: Path, photos: list[Path], args: argparse.Namespace,
                say: Callable[[str], None]) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    rig = await setup(lab, tmp, photos)
    files = [str(p) for p in photos]
    kinds: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "ours_cli": lambda: card_run(rig, via_cli(rig, rig.url)),
        "base_cli": lambda: files_run(rig, via_cli(rig, *files)),
        "ours_sock": lambda: card_run(rig, via_socket(rig, {"cmd": "send_url", "url": rig.url})),
        "base_sock": lambda: files_run(rig, via_socket(rig, {"cmd": "send_files", "paths": files})),
    }
    results: dict[str, list[dict[str, Any]]] = {key: [] for key in kinds}
    for i in range(args.warmup + args.runs):
        done = {key: await run() for key, run in kinds.items()}
        counted = i >= args.warmup
        if counted:
            for key, result in done.items():
                results[key].append(result)
        say(f"run {i + 1 - args.warmup if counted else 'warm-up'}: "
            + ", ".join(f"{key} {r['ms']:.0f} ms" for key, r in done.items()))

    errors = [e for p in (rig.agent, rig.phone) for e in p.events if e["event"] in ("error", "page_failed")]
    if errors:
        raise BenchError(f"the peers reported errors: {errors}")
    return {
        "runs": args.runs, "warmup": args.warmup, "images": len(photos), "url": rig.url,
        "machine": {**machine(), "pillow": metadata.version("pillow")},
        "original_bytes": [p.stat().st_size for p in photos],
        "results": {key: {**summary([r["ms"] for r in rs]), "bytes": statistics.median(r["bytes"] for r in rs)}
                    for key, rs in results.items()},
        "phase_medians_ms": {key: phase_medians(rs, PHASES[key]) for key, rs in results.items()},
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
    }


def phase_medians(runs: list[dict[str, Any]], phases: list[tuple[str, str]]) -> dict[str, float]:
    """Per phase, the median over runs of the time from the previous mark to this one."""
    keys = [mark for mark, _ in phases]
    return {mark: statistics.median(r["marks_ms"][mark] - (r["marks_ms"][prev] if prev else 0.0) for r in runs)
            for prev, mark in zip([None, *keys], keys)}


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=max(100, Console().width))
    n = report["images"]
    table = Table(title=f"Beam to card: a local page with {n} photos, {report['runs']} runs "
                        f"(+{report['warmup']} warm-up)")
    table.add_column("")
    for col in ("median ms", "p90 ms", "min ms", "max ms", "bytes pc→phone"):
        table.add_column(col, justify="right")
    for key, label in RUNS:
        s = report["results"][key]
        table.add_row(label.format(n=n), *(f"{s[c]:.0f}" for c in ("median", "p90", "min", "max")),
                      f"{s['bytes']:,.0f}")
    console.print(table)
    res = report["results"]
    console.print(f"ours / baseline, medians: CLI {res['ours_cli']['median'] / res['base_cli']['median']:.2f}, "
                  f"control socket {res['ours_sock']['median'] / res['base_sock']['median']:.2f}; bytes "
                  f"{res['ours_cli']['bytes'] / res['base_cli']['bytes']:.3f}")
    for key, label in RUNS:
        medians = report["phase_medians_ms"][key]
        console.print(f"{label.format(n=n)}, median per phase, ms: "
                      + "; ".join(f"{what} {medians[mark]:.0f}" for mark, what in PHASES[key]))
    alone = report["thumbnailing_alone"]
    console.print(f"make_thumbnail on the same {n} photos in the bench process (no fetch, no send), median of 3: "
                  f"{alone['threads_ms']:.0f} ms in worker threads as the agent runs it, {alone['serial_ms']:.0f} ms "
                  "one after another")
    m = report["machine"]
    load = report["load_average_1min"]
    console.print("rows: from just before `peerbeam --json send` is spawned in pc (control socket: before the "
                  "request is written) to the phone's `page` event (ours) or its last `received_file` (baseline); "
                  "bytes: thumbnails vs originals, without message headers", style="dim")
    console.print(f"load average (1 min) before {load['before']:.2f}, after {load['after']:.2f}; "
                  f"{m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python {m['python']}, "
                  f"aiortc {m['aiortc']}, aiohttp {m['aiohttp']}, Pillow {m['pillow']}, uvloop {m['uvloop']}",
                  style="dim")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1, help="iterations run first and not counted")
    parser.add_argument("--images", type=int, default=20, help="photos on the page (at most 40: the card's cap)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/beam_card.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    if args.runs < 1 or not 1 <= args.images <= ImageLimits().max_images:
        parser.error(f"--runs must be at least 1 and --images 1 to {ImageLimits().max_images}")

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    async def body(lab: Lab, tmp: Path) -> dict[str, Any]:
        say(f"making {args.images} photos…")
        photos = write_site(tmp / "site", args.images, args.seed)
        alone = thumbnailing_alone(photos)
        return {**await bench(lab, tmp, photos, args, say), "thumbnailing_alone": alone}

    report = run_in_lab("pb-bench-card-", body)
    if report is None:
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
