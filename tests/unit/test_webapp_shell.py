"""The PWA's static parts: the service worker's app-shell list is exactly the app's files (a
module added without listing it would break the offline reload), and the manifest's icons,
scope and share target hold together. The browser side is tested in
tests/integration/test_phone_pwa.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

from signaling.webapp import DEFAULT_APP_DIR

SERVED = {".js", ".css", ".svg", ".png", ".webmanifest"}


def shell_list() -> list[str]:
    source = (DEFAULT_APP_DIR / "sw.js").read_text()
    block = re.search(r"const SHELL = \[(.*?)\];", source, re.S)
    assert block is not None
    return re.findall(r"'([^']+)'", block.group(1))


def test_the_shell_list_is_every_file_the_page_can_load() -> None:
    files = {
        "/app/" + p.relative_to(DEFAULT_APP_DIR).as_posix()
        for p in DEFAULT_APP_DIR.rglob("*")
        if p.is_file() and p.suffix in SERVED and p.name != "sw.js"
    }
    listed = shell_list()
    assert len(listed) == len(set(listed))
    # index.html is served as /p; sw.js is served at the root and is not part of its own cache.
    assert set(listed) == files | {"/p"}


def test_the_manifest_is_installable_and_shares_into_its_scope() -> None:
    manifest = json.loads((DEFAULT_APP_DIR / "manifest.webmanifest").read_text())
    assert manifest["start_url"] == "/p" and manifest["scope"] == "/p" and manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"] and re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = set()
    for icon in manifest["icons"]:
        path = DEFAULT_APP_DIR / icon["src"].removeprefix("/app/")
        with Image.open(path) as image:
            assert image.format == "PNG" and f"{image.width}x{image.height}" == icon["sizes"]
        assert path.stat().st_size < 64 * 1024
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes
    share = manifest["share_target"]
    # W3C Web Share Target: the action must be inside the scope; files need POST multipart.
    assert share["action"].startswith(manifest["scope"])
    assert share["method"] == "POST" and share["enctype"] == "multipart/form-data"
    assert share["params"]["files"][0]["name"] == "files"
    assert {share["params"][k] for k in ("title", "text", "url")} == {"title", "text", "url"}
