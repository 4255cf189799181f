"""Which TURN transport a connection attempt offers aiortc (pure).

aiortc uses only the first STUN URL and the first usable TURN URL of its ICE server list
(``aiortc.rtcicetransport.connection_kwargs``). The signaling server lists TURN over UDP first —
the fastest relay — then TCP, then TLS. A network that blocks UDP (hotel Wi-Fi, some corporate
firewalls) then never reaches the relay, so successive attempts move the next transport to the
front: attempt 0 keeps the server's order (UDP), attempt 1 puts ``?transport=tcp`` first, attempt 2
``turns:`` (TLS over TCP, which passes most proxies), and then it starts over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from signaling.schema import IceServer


def _is_udp(url: str) -> bool:
    return url.startswith("turn:") and "transport=tcp" not in url


def _is_tcp(url: str) -> bool:
    return url.startswith("turn:") and "transport=tcp" in url


def _is_tls(url: str) -> bool:
    return url.startswith("turns:")


_PREFERENCES: Final[tuple[Callable[[str], bool], ...]] = (_is_udp, _is_tcp, _is_tls)


def transports(servers: list[IceServer]) -> list[str]:
    """The TURN transports the list offers, in the order attempts will try them."""
    urls = [url for server in servers for url in server.urls]
    return [name for name, test in zip(("udp", "tcp", "tls"), _PREFERENCES) if any(test(u) for u in urls)]


def for_attempt(servers: list[IceServer], attempt: int) -> list[IceServer]:
    """``servers`` with the TURN URLs of this attempt's transport first (STUN untouched).

    Attempts cycle over the transports the list actually offers, so a server configured with
    UDP only always gets UDP, and one with UDP and TLS alternates between the two.
    """
    offered = transports(servers)
    if len(offered) < 2:
        return servers
    wanted = _PREFERENCES[("udp", "tcp", "tls").index(offered[attempt % len(offered)])]
    reordered: list[IceServer] = []
    for server in servers:
        turn = [u for u in server.urls if u.startswith(("turn:", "turns:"))]
        if not turn:
            reordered.append(server)
            continue
        first = [u for u in turn if wanted(u)]
        rest = [u for u in server.urls if u not in first]
        reordered.append(IceServer(urls=first + rest, username=server.username, credential=server.credential))
    return reordered


@dataclass(frozen=True)
class Attempt:
    """One connection attempt: the TURN transport aiortc will use first (None: no TURN)."""

    transport: str | None
    servers: list[IceServer]


def attempts(servers: list[IceServer], first: int = 0) -> list[Attempt]:
    """One attempt per offered TURN transport, starting with attempt number ``first``.

    With no TURN server, or only one transport, that is a single attempt: retrying the same
    configuration would only double the time until the user hears what failed.
    """
    offered = transports(servers)
    if not offered:
        return [Attempt(None, servers)]
    return [Attempt(offered[(first + i) % len(offered)], for_attempt(servers, first + i))
            for i in range(len(offered))]
