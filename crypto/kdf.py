"""Keys derived for a stated purpose (the magic-wormhole habit).

Every secret peerbeam uses is derived from a parent secret with HKDF-SHA256 (RFC 5869) under its
own purpose label, so that no two uses ever share key material and a label names what a key is
for. ``info`` is ``b"peerbeam/v1 " + purpose + b"\\x00" + context``: the NUL ends the label, so a
label can never run into its context. The salt is empty (RFC 5869 §2.2 then uses HashLen zero
bytes, which is the same HMAC key; WebCrypto accepts an empty salt too, so the browser matches).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO_PREFIX = b"peerbeam/v1 "
SECRET_LEN = 32
RENDEZVOUS_PERIOD = 86400.0  # one UTC day
LAN_EPOCH_PERIOD = 600.0  # ten minutes
LAN_TAG_LEN = 8
CODE_DIGITS = 6


def _info(purpose: str, context: bytes) -> bytes:
    label = purpose.encode("ascii")
    if not label or b"\x00" in label:
        raise ValueError("a purpose is a non-empty ASCII label without NUL")
    return INFO_PREFIX + label + b"\x00" + context


def derive_key(secret: bytes, purpose: str, length: int = 32, context: bytes = b"") -> bytes:
    if not secret:
        raise ValueError("cannot derive from an empty secret")
    hkdf = HKDF(algorithm=SHA256(), length=length, salt=None, info=_info(purpose, context))
    return hkdf.derive(secret)


def _require_secret(value: bytes, what: str) -> None:
    if len(value) != SECRET_LEN:
        raise ValueError(f"{what} is {SECRET_LEN} bytes")


def pairing_psk(qr_secret: bytes) -> bytes:
    """The Noise_NKpsk0 psk (DESIGN "Pairing" step 4: psk = HKDF(s)) from the QR's 32 random bytes."""
    _require_secret(qr_secret, "the QR secret")
    return derive_key(qr_secret, "pairing psk")


def pair_secret(chaining_key: bytes) -> bytes:
    """The long-term secret of a pairing, from the pairing handshake's final chaining key."""
    _require_secret(chaining_key, "a chaining key")
    return derive_key(chaining_key, "pair")


def reconnect_psk(pair_secret: bytes) -> bytes:
    """The Noise_KKpsk0 psk for reconnecting paired devices."""
    _require_secret(pair_secret, "a pair secret")
    return derive_key(pair_secret, "reconnect psk")


def rendezvous_id(pair_secret: bytes, day: int) -> bytes:
    """What both peers present to the server to be joined; changes every UTC day."""
    _require_secret(pair_secret, "a pair secret")
    return derive_key(pair_secret, "rid", context=_u64(day))


def lan_tag(pair_secret: bytes, epoch: int) -> bytes:
    """The mDNS TXT tag: HMAC(pair_secret, "lan" | epoch)[:8] (DESIGN "Reconnect").

    "lan" is written in the same labelled form as the HKDF info (``b"peerbeam/v1 lan\\x00"``)
    followed by the epoch as an unsigned 64-bit big-endian number.

    Truncation to 64 bits is enough for a hint: the KK handshake authenticates afterwards.
    """
    _require_secret(pair_secret, "a pair secret")
    mac = hmac.new(pair_secret, _info("lan", _u64(epoch)), hashlib.sha256).digest()
    return mac[:LAN_TAG_LEN]


def transfer_id(pair_secret: bytes, sha256_hex: str, size: int, name: str) -> bytes:
    """8 bytes naming one file sent within one pairing: the same file, offered again after a
    reconnect or a restart of the sender, gets the same id, which is how the receiver finds the
    partial file it kept and resumes (issue 3). Derived, not random, and keyed, so the id says
    nothing about the file to anyone without the pair secret."""
    _require_secret(pair_secret, "a pair secret")
    context = bytes.fromhex(sha256_hex) + _u64(size) + name.encode("utf-8")
    return derive_key(pair_secret, "transfer id", 8, context=context)


def comparison_code(handshake_hash: bytes) -> str:
    """Six decimal digits both users may compare (DESIGN "Pairing" step 4).

    64 derived bits reduced mod 10**6: since 2**64 = q * 10**6 + r with r < 10**6, a code is
    more likely than another by at most one part in q ~ 1.8e13, far below anything a person
    comparing digits could exploit.
    """
    if not handshake_hash:
        raise ValueError("empty handshake hash")
    value = int.from_bytes(derive_key(handshake_hash, "comparison code", 8), "big")
    return f"{value % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def day_of(now: float) -> int:
    return int(now // RENDEZVOUS_PERIOD)


def lan_epoch_of(now: float) -> int:
    return int(now // LAN_EPOCH_PERIOD)


def _u64(value: int) -> bytes:
    if not 0 <= value < 2**64:
        raise ValueError("day and epoch numbers are unsigned 64-bit")
    return value.to_bytes(8, "big")
