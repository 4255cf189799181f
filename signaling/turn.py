"""Time-limited TURN credentials and the ICE server list handed to paired devices.

DESIGN "Paths" 3, following the TURN REST API (draft-uberti-behave-turn-rest-00 §2.2) that
coturn implements with ``use-auth-secret`` / ``static-auth-secret``:

    username = "<expiry unix time>:<id>"
    password = base64(HMAC-SHA1(secret, username))

coturn recomputes the password from the username and refuses it once the expiry has passed, so
the credentials are stateless: any number of TURN servers scale without talking to us (DESIGN
"Scale"). The server mints them only for sessions it has validated (a pairing, a join, a
rendezvous), never for an unauthenticated socket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

from .config import ServerConfig
from .schema import IceServer


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    password: str
    expires_at: int


def turn_credentials(secret: str, now: float, ttl: float, user_id: str) -> TurnCredentials:
    """Credentials valid until ``now + ttl`` (whole seconds, rounded up) for ``user_id``."""
    if ":" in user_id:
        # The first colon separates the expiry; coturn takes everything before it as the time.
        raise ValueError("a TURN user id must not contain ':'")
    expires_at = math.ceil(now + ttl)
    username = f"{expires_at}:{user_id}"
    # HMAC-SHA1 is what the TURN REST draft and coturn specify; it is a MAC here, not a hash of
    # a secret, so SHA-1's collision weakness does not apply.
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires_at)


def verify_turn_password(secret: str, username: str, password: str, now: float) -> bool:
    """What coturn checks: the MAC matches and the expiry in the username is in the future."""
    expiry, sep, _ = username.partition(":")
    if not sep or not expiry.isdigit() or int(expiry) <= now:
        return False
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode("ascii"), password)


def ice_servers(config: ServerConfig, now: float, user_id: str | None = None) -> list[IceServer]:
    """STUN URLs without credentials and TURN URLs with fresh ones; empty when none configured.

    aiortc takes only the first STUN and the first TURN URL (DESIGN "Facts"), so each kind is one
    ``IceServer`` entry whose ``urls`` keep the configured order.
    """
    servers: list[IceServer] = []
    if config.stun_urls:
        servers.append(IceServer(urls=list(config.stun_urls)))
    if config.turn_urls and config.turn_secret:
        creds = turn_credentials(
            config.turn_secret,
            now,
            config.turn_ttl,
            user_id if user_id is not None else secrets.token_urlsafe(9),
        )
        servers.append(
            IceServer(
                urls=list(config.turn_urls), username=creds.username, credential=creds.password
            )
        )
    return servers
