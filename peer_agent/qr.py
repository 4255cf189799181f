"""The pairing QR: in the terminal, and as PNG and SVG files."""

from __future__ import annotations

import io
from pathlib import Path

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def _make(url: str) -> qrcode.QRCode:
    # Medium error correction: survives a phone camera at an angle while staying small enough
    # for a ~220-character URL to scan from a terminal.
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    return qr


def terminal_text(url: str) -> str:
    """Half-block characters, two modules per character row; light modules are spaces."""
    out = io.StringIO()
    _make(url).print_ascii(out=out, invert=True)
    return out.getvalue()


def write_png(url: str, path: Path, box_size: int = 8) -> None:
    qr = _make(url)
    qr.box_size = box_size
    image = qr.make_image(fill_color="black", back_color="white")
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        image.save(f, format="PNG")
    tmp.replace(path)  # readers never see half a file


def write_svg(url: str, path: Path) -> None:
    image = _make(url).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        image.save(f)
    tmp.replace(path)
