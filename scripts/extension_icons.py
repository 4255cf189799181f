"""Draw the browser extension's toolbar icons (browser_client/extension/icons/icon-N.png).

The PNGs are committed; run this again only to change them:
    .venv/bin/python scripts/extension_icons.py
Drawn at 8x and downsampled, so the small sizes are anti-aliased.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZES = (16, 32, 48, 128)
OUT = Path(__file__).resolve().parent.parent / "browser_client" / "extension" / "icons"
BLUE = (37, 99, 235, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int) -> Image.Image:
    scale = 8
    edge = size * scale
    image = Image.new("RGBA", (edge, edge), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((0, 0, edge - 1, edge - 1), radius=edge // 5, fill=BLUE)

    def at(x: float, y: float) -> tuple[float, float]:
        return (x * edge, y * edge)

    # An arrow leaving the screen upwards: the page going to the other device.
    pen.polygon([at(0.50, 0.16), at(0.80, 0.46), at(0.61, 0.46), at(0.61, 0.66),
                 at(0.39, 0.66), at(0.39, 0.46), at(0.20, 0.46)], fill=WHITE)
    pen.rounded_rectangle((*at(0.22, 0.74), *at(0.78, 0.84)), radius=edge // 40, fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        draw(size).save(OUT / f"icon-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
