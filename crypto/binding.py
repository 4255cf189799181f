"""Binding the DTLS channel to the Noise handshake (DESIGN "Pairing" step 5).

The signaling server could swap the DTLS fingerprints inside SDP if they travelled in clear; they
travel inside Noise transport messages, and once the data channel opens each side also proves,
with a MAC keyed from the Noise chaining key, which fingerprints it saw. The receiver recomputes
the MAC with the *sender's* role and the sender's view (sender's local fingerprint = receiver's
remote one), so a relay that terminated DTLS on either side produces a mismatch and the channel
closes before any application byte flows (the idea of RFC 8844 / channel binding, RFC 5056).
"""

from __future__ import annotations

import hmac
import re
from hashlib import sha256
from typing import Literal

from .errors import BindingError
from .kdf import derive_key

Role = Literal["initiator", "responder"]

FINGERPRINT_LEN = 32  # sha-256 (RFC 8122 §5)
_MAX_FINGERPRINT_CHARS = 200
_FINGERPRINT = re.compile(r"(?:sha-256\s+)?((?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2})", re.IGNORECASE)
_LABEL = b"peerbeam/v1 dtls binding\x00"
_ROLES: tuple[Role, Role] = ("initiator", "responder")


def normalise_fingerprint(value: str) -> str:
    """``"sha-256 AB:CD:..."`` or ``"ab:cd:..."`` -> ``"AB:CD:..."`` (exactly 32 bytes).

    Only sha-256 is accepted: exactly one fingerprint algorithm per side keeps a downgrade to a
    weaker hash impossible.
    """
    if len(value) > _MAX_FINGERPRINT_CHARS:
        raise BindingError()
    match = _FINGERPRINT.fullmatch(value.strip())
    if match is None:
        raise BindingError()
    return match.group(1).upper()


def _fingerprint_bytes(value: str) -> bytes:
    return bytes.fromhex(normalise_fingerprint(value).replace(":", ""))


def binding_key(chaining_key: bytes) -> bytes:
    return derive_key(chaining_key, "dtls binding")


def binding_mac(
    key: bytes, role: Role, handshake_hash: bytes, local_fp: str, remote_fp: str
) -> bytes:
    """HMAC-SHA256 over label | role | handshake hash | local fp | remote fp, each length-prefixed.

    Length prefixes (2 bytes, big-endian) make the encoding unambiguous: no two different tuples
    produce the same bytes.
    """
    if role not in _ROLES:
        raise ValueError("role is 'initiator' or 'responder'")
    fields = (
        role.encode("ascii"),
        handshake_hash,
        _fingerprint_bytes(local_fp),
        _fingerprint_bytes(remote_fp),
    )
    message = _LABEL + b"".join(len(f).to_bytes(2, "big") + f for f in fields)
    return hmac.new(key, message, sha256).digest()


def verify_binding(
    key: bytes,
    peer_role: Role,
    handshake_hash: bytes,
    peer_local_fp: str,
    peer_remote_fp: str,
    mac: bytes,
) -> None:
    """Check the MAC the peer sent; ``peer_local_fp`` is the peer's own certificate (our remote)."""
    expected = binding_mac(key, peer_role, handshake_hash, peer_local_fp, peer_remote_fp)
    if not hmac.compare_digest(expected, mac):
        raise BindingError()
