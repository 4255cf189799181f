"""Long-term identity keys (X25519) and the strict base64url codec used on links and tokens."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

KEY_LEN = 32

# RFC 4648 §5 alphabet, no padding. A length of 1 mod 4 can never be produced by an encoder.
_B64U = re.compile(r"[A-Za-z0-9_-]*")


def generate_identity() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def private_bytes(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def load_private(raw: bytes) -> X25519PrivateKey:
    if len(raw) != KEY_LEN:
        raise ValueError("an X25519 private key is 32 bytes")
    return X25519PrivateKey.from_private_bytes(raw)


def b64u_encode(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def b64u_decode(s: str, *, max_len: int) -> bytes:
    """Decode unpadded base64url strictly.

    ``max_len`` caps the *encoded* length and is checked before any decoding work, so hostile
    input costs nothing. Padding, other alphabets, whitespace and non-canonical encodings (stray
    bits in the last character) all raise ValueError: one value has exactly one encoding, which
    keeps tokens and links unmalleable.
    """
    if len(s) > max_len:
        raise ValueError("base64url input too long")
    if len(s) % 4 == 1 or _B64U.fullmatch(s) is None:
        raise ValueError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex already guards
        raise ValueError("not unpadded base64url") from exc
    if b64u_encode(raw) != s:
        raise ValueError("non-canonical base64url")
    return raw
