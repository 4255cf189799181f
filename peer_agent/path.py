"""Which network path a peer connection really uses: LAN, direct through NAT, or relay.

Read from the ICE candidate pair aioice nominated (RFC 8445 §8.1.1). aioice keeps it in a
private attribute, so this is the one place that reads aioice internals; aioice is pinned in
pyproject.toml; tests/unit/test_rtc_sdp.py covers the classification and tests/unit/test_path.py
the attributes read.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any, Literal

PathKind = Literal["lan", "direct", "relay"]


@dataclass(frozen=True)
class PathInfo:
    kind: PathKind
    transport: str  # "udp" or "tcp" (to the relay: "udp", "tcp" or "tls")
    local: str
    remote: str
    local_type: str
    remote_type: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_local_address(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        # Chromium's ".local" mDNS names are host candidates on the same link.
        return host.endswith(".local")
    return ip.is_private or ip.is_link_local


def classify(local_type: str, remote_type: str, remote_host: str) -> PathKind:
    """Relay if either side relays; LAN if host-to-host on local addresses; else direct.

    A remote *peer-reflexive* candidate on a local address is a LAN path too: that is what a
    host candidate hidden behind an mDNS name turns into when it is learned from a check.
    """
    if "relay" in (local_type, remote_type):
        return "relay"
    if local_type == "host" and remote_type in ("host", "prflx") and _is_local_address(remote_host):
        return "lan"
    return "direct"


def relay_transport(connection: Any) -> str:
    """How an aioice connection reaches its TURN server: "udp", "tcp" or "tls"."""
    if getattr(connection, "turn_ssl", False):
        return "tls"
    return str(getattr(connection, "turn_transport", "udp")).lower()


def describe_path(pc: Any) -> PathInfo | None:
    """The nominated pair of an open aiortc RTCPeerConnection, or None before ICE completes."""
    try:
        connection = pc.sctp.transport.transport._connection
        pair = connection._nominated.get(1)
    except AttributeError:
        return None
    if pair is None:
        return None
    local, remote = pair.local_candidate, pair.remote_candidate
    transport = str(local.transport).lower()
    if local.type == "relay":
        # A relayed candidate is always "udp" towards the peer; what the user wants to know is
        # how we reach the relay, which aiortc configured on the connection from the TURN URL.
        transport = relay_transport(connection)
    kind = classify(local.type, remote.type, remote.host)
    return PathInfo(
        kind=kind,
        transport=transport,
        local=f"{local.host}:{local.port}",
        remote=f"{remote.host}:{remote.port}",
        local_type=local.type,
        remote_type=remote.type,
    )
