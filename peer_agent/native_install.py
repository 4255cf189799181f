"""`peerbeam install-extension-host`: tell Chromium / Chrome where the native host is.

Chrome finds a native messaging host by name in NativeMessagingHosts/<name>.json under the
browser's user data dir on Linux (~/.config/chromium, ~/.config/google-chrome, or whatever
--user-data-dir says). The manifest's `path` must be an absolute executable and cannot carry
arguments, so it points at a small launcher that execs this install's peerbeam with its
config dir (https://developer.chrome.com/docs/extensions/develop/concepts/native-messaging).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .native_host import HOST_NAME, NativeHostError, origin_of

_EXTENSION_ID = re.compile(r"^[a-p]{32}$")
LAUNCHER_NAME = "extension-host"


def extension_id_from_key(key_b64: str) -> str:
    """Chrome's id for an extension whose manifest `key` is this base64 DER SubjectPublicKeyInfo:
    the first 128 bits of its SHA-256, hex digits 0-f written as the letters a-p."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def check_extension_id(extension_id: str) -> str:
    if not _EXTENSION_ID.match(extension_id):
        raise NativeHostError(f"{extension_id!r} is not a Chrome extension id (32 letters a-p).")
    return extension_id


def default_browser_dirs() -> list[Path]:
    """The user data dirs of Chromium and Google Chrome on Linux."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config / "chromium", config / "google-chrome"]


def peerbeam_command() -> list[str]:
    """How a launcher runs this install's peerbeam: the console script next to the running
    interpreter (a venv's bin/), else that interpreter with -m."""
    script = Path(sys.executable).parent / "peerbeam"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "peer_agent"]


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)  # atomic: Chrome never reads half a manifest, nor runs half a launcher


def host_manifest(launcher: Path, extension_ids: Sequence[str]) -> dict[str, object]:
    return {
        "name": HOST_NAME,
        "description": "peerbeam: the browser extension's link to the running agent",
        "path": str(launcher),
        "type": "stdio",
        "allowed_origins": [origin_of(i) for i in extension_ids],
    }


def install_host(browser_dirs: Sequence[Path], extension_ids: Sequence[str], home: Path,
                 executable: Sequence[str]) -> list[Path]:
    """Write the launcher HOME/extension-host and, for each browser dir,
    DIR/NativeMessagingHosts/org.peerbeam.agent.json; return the files written (launcher first).

    `executable` is the argv that runs peerbeam (see `peerbeam_command`). The launcher passes
    the extension ids on, so the host can check its caller's origin too."""
    ids = [check_extension_id(i) for i in extension_ids]
    if not ids:
        raise NativeHostError("Give at least one extension id.")
    home = home.expanduser().absolute()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # the config dir: keys, pairings, socket
    argv = [*executable, "--home", str(home), "extension-host"]
    for extension_id in ids:
        argv += ["--extension-id", extension_id]
    launcher = home / LAUNCHER_NAME
    _write(launcher, "#!/bin/sh\n"
                     "# Written by `peerbeam install-extension-host`: Chrome starts this for the peerbeam\n"
                     "# extension, with the caller's origin as the first argument.\n"
                     f'exec {shlex.join(argv)} "$@"\n', 0o755)
    manifest = json.dumps(host_manifest(launcher, ids), indent=2) + "\n"
    written = [launcher]
    for browser_dir in browser_dirs:
        target = browser_dir.expanduser().absolute() / "NativeMessagingHosts" / f"{HOST_NAME}.json"
        _write(target, manifest, 0o644)
        written.append(target)
    return written
