"""The QR pairing link (DESIGN "Pairing" step 2).

``https://<origin>/p#1.<token>.<s>.<pk_agent>``: the sealed token, the 32-byte QR secret and the
agent's X25519 public key, all base64url without padding, in the fragment, which browsers never
send to a server. ``http://`` is allowed for a signaling server on the LAN.

Parsing is strict because the link arrives from a camera: one spelling per link, no userinfo, no
query, nothing but ``/p`` as the path, and every length checked before anything is decoded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import LinkError
from .keys import b64u_decode, b64u_encode
from .tokens import MAX_TOKEN_CHARS

LINK_VERSION = "1"
LINK_PATH = "/p"
MAX_LINK_CHARS = 2048
SECRET_LEN = 32
KEY_LEN = 32
_B64_32 = 43  # unpadded base64url length of 32 bytes
_SCHEMES = ("http", "https")
# Printable ASCII without space: urlsplit() silently drops tabs and newlines, we refuse them.
_URL_CHARS = re.compile(r"[\x21-\x7e]+")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
# A DNS name or IPv4 address, or an IPv6 literal: no percent-escapes, no IDNA surprises.
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|[0-9a-f:.]{2,45}")


@dataclass(frozen=True)
class PairingLink:
    origin: str  # scheme://host[:port], no path
    token: str
    secret: bytes
    agent_key: bytes

    def __post_init__(self) -> None:
        if _origin_of(self.origin) != self.origin:
            raise ValueError("origin is scheme://host[:port] with a lowercase scheme and host")
        if not 0 < len(self.token) <= MAX_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(self.token):
            raise ValueError("token is base64url")
        if len(self.secret) != SECRET_LEN or len(self.agent_key) != KEY_LEN:
            raise ValueError("secret and agent_key are 32 bytes")

    def to_url(self) -> str:
        fragment = ".".join(
            (LINK_VERSION, self.token, b64u_encode(self.secret), b64u_encode(self.agent_key))
        )
        return f"{self.origin}{LINK_PATH}#{fragment}"


def new_secret() -> bytes:
    return os.urandom(SECRET_LEN)


def _origin_of(url: str) -> str:
    """The canonical origin of ``url``; raises LinkError if it is not a plain http(s) origin."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        raise LinkError("This pairing link has a malformed address.") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise LinkError("This pairing link must start with https:// (or http:// on a LAN).")
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise LinkError("This pairing link has a malformed address.")
    host = parts.hostname.lower()
    if not _HOST.fullmatch(host):
        raise LinkError("This pairing link has a malformed address.")
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal (RFC 3986 §3.2.2)
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def parse_link(url: str) -> PairingLink:
    """Parse a scanned pairing link; raises :class:`LinkError` (and nothing else) on bad input."""
    if not isinstance(url, str) or len(url) > MAX_LINK_CHARS:
        raise LinkError("This pairing link is too long.")
    if not _URL_CHARS.fullmatch(url):
        raise LinkError("This pairing link contains characters a link cannot have.")
    origin = _origin_of(url)
    parts = urlsplit(url)
    if parts.path != LINK_PATH or parts.query or "?" in url:
        raise LinkError("This is not a peerbeam pairing link.")
    fields = parts.fragment.split(".")
    if len(fields) != 4 or fields[0] != LINK_VERSION:
        raise LinkError(
            "This pairing link is not one this version understands: update peerbeam or scan again."
        )
    _version, token, secret_text, key_text = fields
    if not 0 < len(token) <= MAX_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(token):
        raise LinkError("This pairing link is damaged: scan it again.")
    try:
        secret = b64u_decode(secret_text, max_len=_B64_32)
        agent_key = b64u_decode(key_text, max_len=_B64_32)
    except ValueError:
        raise LinkError("This pairing link is damaged: scan it again.") from None
    if len(secret) != SECRET_LEN or len(agent_key) != KEY_LEN:
        raise LinkError("This pairing link is damaged: scan it again.")
    return PairingLink(origin=origin, token=token, secret=secret, agent_key=agent_key)
