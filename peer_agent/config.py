"""The one configuration object of a peerbeam node, passed down like RTCConfiguration."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

DeviceKind = Literal["pc", "phone", "cli"]


def default_home() -> Path:
    """Where pairing records and the identity key live: $PEERBEAM_HOME or the user config dir."""
    env = os.environ.get("PEERBEAM_HOME")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("peerbeam", appauthor=False))


def default_name(home: Path | None = None) -> str:
    """The name this device last introduced itself with, else the host name."""
    if home is not None:
        try:
            saved = (home / "name").read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            saved = ""
        if saved:
            return saved[:64]
    return (socket.gethostname() or "peerbeam")[:64]


def remember_name(home: Path, name: str) -> None:
    """Keep an explicit --name, so that later reconnects introduce the device the same way."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "name").write_text(name[:64], encoding="utf-8")


@dataclass(frozen=True)
class NodeConfig:
    home: Path = field(default_factory=default_home)
    name: str = field(default_factory=default_name)
    device: DeviceKind = "pc"
    # Signaling origin, e.g. "http://192.0.2.1:8443". None on the agent = embedded server.
    server: str | None = None
    auto_accept: bool = False
    # From "the other side answered the handshake" to "the data channel is open and bound".
    # aioice alone takes ~64 s to give up (DESIGN: facts about this machine); users want an
    # answer sooner, with a sentence saying what to try.
    connect_timeout: float = 15.0
    # How long `connect` keeps trying before it says the device is unreachable.
    dial_timeout: float = 30.0
    # Application-level liveness: ping interval and how long without a pong means "gone".
    ping_interval: float = 5.0
    ping_timeout: float = 15.0
    # Channel messages accepted per second from one device (burst: twice that).
    inbound_per_second: float = 100.0
    # Reconnect backoff bounds after a drop.
    retry_min: float = 0.5
    retry_max: float = 10.0
    # Files written next to the terminal QR.
    qr_png: Path | None = None
    qr_svg: Path | None = None
    # The QR is refreshed this long before its token expires.
    qr_refresh_margin: float = 20.0

    @property
    def records_path(self) -> Path:
        return self.home / "pairings.json"

    @property
    def identity_path(self) -> Path:
        return self.home / "identity.key"

    @property
    def control_path(self) -> Path:
        return self.home / "control.sock"
