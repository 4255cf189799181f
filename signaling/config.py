"""The one configuration object of the signaling server (like ``RTCConfiguration`` for aiortc).

Every timing and limit lives here so that tests can shrink them and operators can read them in
one place. Defaults suit one process serving a home or a small team (DESIGN "Scale").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .schema import MAX_FRAME_BYTES

# DESIGN "Hardening": an idle HTTP connection is held at most this long.
MAX_KEEPALIVE = 10.0


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    # 0 asks the OS for a free port (tests); RunningServer.port reports the one bound.
    port: int = 8443

    # ---- pairing tokens (DESIGN "Pairing" 1) ----
    token_ttl: float = 120.0
    # AES-256 keys by key id, for rotation; None: a fresh random key for this process only
    # (tokens then die with the process, which is fine for a single node).
    token_keys: Mapping[int, bytes] | None = None
    # The key id new tokens are sealed with; None: the highest id in ``token_keys``.
    token_kid: int | None = None

    # ---- deadlines (DESIGN "Hardening") ----
    # A WebSocket that has not paired, joined or presented a rendezvous id by then is closed.
    auth_deadline: float = 10.0
    # A TCP connection whose first request headers are not complete by then is closed
    # (slowloris; aiohttp has no header timeout of its own).
    header_deadline: float = 10.0
    # HTTP keep-alive (aiohttp keepalive_timeout); ≤ MAX_KEEPALIVE.
    keepalive: float = 5.0
    # WebSocket ping interval; a peer that does not answer within half of it is dropped.
    heartbeat: float = 5.0
    # Largest WebSocket message; aiohttp closes with 1009 above it (RFC 6455 §7.4.1).
    max_frame: int = MAX_FRAME_BYTES
    # Largest HTTP request body: no endpoint takes one.
    client_max_size: int = 1024
    # A socket that sends this many invalid frames is closed.
    max_protocol_errors: int = 5
    # How long a WebSocket close waits for the peer's close frame (RFC 6455 §7.1.1).
    close_timeout: float = 2.0
    # Grace given to open connections when the server shuts down.
    shutdown_timeout: float = 2.0

    # ---- rate limits per client IP (token buckets: the per-minute amount is also the burst) ----
    # An agent holds one waiting rendezvous socket per offline paired device (plus one for its
    # QR), and a small office may share one NAT address: room for that, not for a flood.
    max_sockets_per_ip: int = 64
    max_sockets: int = 10_000
    connections_per_minute: float = 60.0
    # pair.create + pair.refresh. An agent refreshes about once per token_ttl.
    token_requests_per_minute: float = 20.0
    # pair.join + rendezvous.
    joins_per_minute: float = 30.0
    # relay messages per second on one socket (trickle ICE sends bursts of a few dozen).
    relay_per_second: float = 200.0
    # IPs remembered by each limiter; idle ones are evicted first.
    rate_limit_keys: int = 65_536
    # used-token ids remembered by the in-memory store (each lives ≤ token_ttl).
    store_max_keys: int = 100_000

    # ---- ICE servers handed to paired devices (DESIGN "Paths" 2 and 3) ----
    # The coturn ``static-auth-secret``; None: no TURN credentials are minted.
    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    turn_ttl: float = 3600.0

    def __post_init__(self) -> None:
        positive = {
            "token_ttl": self.token_ttl,
            "auth_deadline": self.auth_deadline,
            "header_deadline": self.header_deadline,
            "keepalive": self.keepalive,
            "heartbeat": self.heartbeat,
            "close_timeout": self.close_timeout,
            "shutdown_timeout": self.shutdown_timeout,
            "connections_per_minute": self.connections_per_minute,
            "token_requests_per_minute": self.token_requests_per_minute,
            "joins_per_minute": self.joins_per_minute,
            "relay_per_second": self.relay_per_second,
            "turn_ttl": self.turn_ttl,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive")
        if self.keepalive > MAX_KEEPALIVE:
            raise ValueError(f"keepalive must be at most {MAX_KEEPALIVE} s")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        for name, count in {
            "max_frame": self.max_frame,
            "max_protocol_errors": self.max_protocol_errors,
            "max_sockets_per_ip": self.max_sockets_per_ip,
            "max_sockets": self.max_sockets,
            "rate_limit_keys": self.rate_limit_keys,
            "store_max_keys": self.store_max_keys,
        }.items():
            if count < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_urls need a turn_secret")
        if self.token_kid is not None and (
            self.token_keys is None or self.token_kid not in self.token_keys
        ):
            raise ValueError("token_kid has no key in token_keys")
