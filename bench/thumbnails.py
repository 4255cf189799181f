"""Thumbnail benchmark: peer_agent.images.make_thumbnail next to a naive full-decode Pillow.

Run from the repository root:

    .venv/bin/python bench/thumbnails.py [--images 20] [--rounds 3] [--json]

It generates ``--images`` photo-like JPEGs of 3000x2000 (shapes on a gradient with noise,
quality 90, in memory; generation is not timed), then in the same run and the same process,
alternating per image so that both see the same cache state:

* ours:  ``make_thumbnail`` (sniff, header checks, ``draft()`` decode at 1/8, EXIF transpose,
  320 px LANCZOS, WEBP q80 without metadata, sha-256 and dHash included);
* ours with ``thumb_format="JPEG"``, to split the decode gain from the encoder's cost;
* naive: ``Image.open`` + ``load()`` (full 6 Mpx decode: draft can no longer apply) +
  ``thumbnail((320, 320))`` + ``save(JPEG, quality=80)``.

Each image is timed ``--rounds`` times per method (``time.perf_counter``); the table shows the
median and p90 over all images x rounds, in ms per image, and the mean output bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import PIL
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from peer_agent.images import ImageLimits, Thumbnail, make_thumbnail

WIDTH, HEIGHT = 3000, 2000


def generate(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((WIDTH, HEIGHT)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        r = rng.randrange(40, 600)
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    noise = Image.effect_noise((WIDTH, HEIGHT), 24).convert("RGB")
    image = Image.blend(image, noise, 0.15)  # texture, so the JPEG is photo-sized
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def naive(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        image.thumbnail((320, 320))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
        return out.getvalue()


def ours(limits: ImageLimits) -> Callable[[bytes], bytes]:
    def run(data: bytes) -> bytes:
        made = make_thumbnail(data, limits)
        assert isinstance(made, Thumbnail), made
        return made.data
    return run


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sources = [generate(seed) for seed in range(args.images)]
    methods: dict[str, Callable[[bytes], bytes]] = {
        "ours (draft + WEBP)": ours(ImageLimits()),
        "ours (draft + JPEG)": ours(ImageLimits(thumb_format="JPEG")),
        "naive (full decode + JPEG)": naive,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    sizes: dict[str, list[int]] = {name: [] for name in methods}
    for method in methods.values():  # warm-up: imports, codec initialisation
        method(sources[0])
    for _ in range(args.rounds):
        for data in sources:
            for name, method in methods.items():
                started = time.perf_counter()
                out = method(data)
                times[name].append((time.perf_counter() - started) * 1000)
                sizes[name].append(len(out))

    baseline = statistics.median(times["naive (full decode + JPEG)"])
    rows: list[dict[str, float | str]] = [{
        "method": name,
        "median_ms": statistics.median(times[name]),
        "p90_ms": percentile(times[name], 0.9),
        "speedup": baseline / statistics.median(times[name]),
        "mean_bytes": statistics.mean(sizes[name]),
    } for name in methods]
    report = {
        "images": args.images, "rounds": args.rounds, "size": f"{WIDTH}x{HEIGHT}",
        "mean_source_bytes": statistics.mean(len(s) for s in sources),
        "python": platform.python_version(), "pillow": PIL.__version__, "rows": rows,
    }
    if args.json:
        print(json.dumps(report))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title=(f"Thumbnails of {args.images} JPEGs {WIDTH}x{HEIGHT} "
                         f"(mean {report['mean_source_bytes'] / 1e6:.2f} MB), "
                         f"{args.rounds} rounds, 320 px edge"))
    table.add_column("method")
    for column in ("ms/image median", "p90", "vs naive", "bytes/thumbnail"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["method"]), f"{row['median_ms']:.1f}", f"{row['p90_ms']:.1f}",
                      f"{row['speedup']:.1f}x", f"{row['mean_bytes']:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
