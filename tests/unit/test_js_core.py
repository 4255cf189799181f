"""The browser's protocol core (browser_client/app/core) passes its node tests.

Those tests hold the JavaScript port to the Python peer through the shared vectors in
tests/vectors/; running them here keeps `pytest` the single entry point. Skipped only when
node is not installed at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT = Path(__file__).parents[2] / "browser_client"
MIN_NODE = (20, 19)  # @noble/* 2.x: "engines": {"node": ">=20.19.0"}


def test_js_core_passes_its_node_tests() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("node is not installed: scripts/bootstrap installs nodejs and npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert tuple(int(n) for n in version.lstrip("v").split(".")[:2]) >= MIN_NODE, (
        f"node {version} is too old for the browser core's dependencies (needs >= 20.19)"
    )
    assert npm is not None, "node is installed but npm is not"
    assert (CLIENT / "node_modules" / "esbuild").is_dir(), (
        "browser_client has no dependencies installed: run `npm --prefix browser_client ci`"
    )
    build = subprocess.run([npm, "--prefix", str(CLIENT), "run", "build"], capture_output=True, text=True,
                           timeout=120, check=False)
    assert build.returncode == 0, f"npm run build failed:\n{build.stdout}\n{build.stderr}"
    done = subprocess.run([node, "--test", "--test-reporter=spec", "test/"], cwd=CLIENT, capture_output=True,
                          text=True, timeout=180, check=False)
    output = f"{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert done.returncode == 0, f"node --test failed:\n{output}"
    ran = re.search(r"tests (\d+)", done.stdout)
    assert ran is not None and int(ran.group(1)) > 0, f"node --test ran no tests:\n{output}"
