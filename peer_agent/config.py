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


def default_downloads() -> Path:
    """Where received files land: $PEERBEAM_DOWNLOADS, else the user's Downloads folder."""
    env = os.environ.get("PEERBEAM_DOWNLOADS")
    if env:
        return Path(env)
    return Path(platformdirs.user_downloads_dir())


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
    # Pairings on the agent, and incoming files everywhere, are accepted without asking.
    auto_accept: bool = False
    downloads: Path = field(default_factory=default_downloads)
    # A transfer whose sender goes quiet this long (while the channel still answers pings) is
    # stopped; its partial file stays for a resume.
    stall_timeout: float = 30.0
    # How long a receiver has to answer a file offer before the sender gives up.
    offer_timeout: float = 300.0
    # `peerbeam send` waits this long for the device to come back after a drop, then resumes.
    resume_wait: float = 120.0
    # The agent answers pulls only while active: it goes inactive after this much idle time.
    idle_timeout: float = 2 * 3600.0
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
    # LAN (issue 5): the agent listens on a TCP port (0: the OS picks one) and advertises it by
    # mDNS; a paired peer looks for it there first, for up to lan_browse_timeout, then goes to
    # the server. lan_address ("IP:PORT") skips mDNS. lan_fast_path: files between two Python
    # peers on a LAN connection go over it (fast_path.py) rather than the data channel.
    lan: bool = True
    lan_port: int = 0
    lan_address: str | None = None
    lan_fast_path: bool = True
    lan_browse_timeout: float = 2.0
    # From TCP connect to the end of the Noise handshake on a LAN connection.
    lan_handshake_timeout: float = 5.0

    @property
    def records_path(self) -> Path:
        return self.home / "pairings.json"

    @property
    def identity_path(self) -> Path:
        return self.home / "identity.key"

    @property
    def control_path(self) -> Path:
        return self.home / "control.sock"
