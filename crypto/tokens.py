"""Sealed pairing tokens (DESIGN "Pairing" step 1).

The signaling server hands the agent an opaque token that only the server can open: AES-256-GCM
under the server's ``token_key`` over {version, room, token id, expiry}. A device that scans the
QR presents it back to claim the room. The token is unforgeable and bound to its key id and
version by the AEAD's associated data; single use is enforced by the server's store with
``token_id``, not here.

Wire format (base64url, no padding)::

    version (1) | kid (1) | nonce (12) | AESGCM(key[kid], nonce, plaintext, aad)
    plaintext = version (1) | room (16) | token_id (16) | expires_at_ms (uint64 big-endian)
    aad       = b"peerbeam token\\x00" | version | kid

The nonce is random: with 96-bit random nonces a key may seal ~2**32 tokens before the collision
bound of NIST SP 800-38D §8.3 is reached, far more than a key lives through rotation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import TokenError
from .keys import b64u_decode, b64u_encode

TOKEN_VERSION = 1
ROOM_LEN = 16
TOKEN_ID_LEN = 16
MAX_TOKEN_CHARS = 256

_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_AAD_LABEL = b"peerbeam token\x00"
_PLAINTEXT = struct.Struct(f">B{ROOM_LEN}s{TOKEN_ID_LEN}sQ")
_HEADER_LEN = 2
_SEALED_LEN = _HEADER_LEN + _NONCE_LEN + _PLAINTEXT.size + _TAG_LEN


@dataclass(frozen=True)
class TokenClaims:
    version: int
    room: bytes
    token_id: bytes
    expires_at: float


class TokenSealer:
    """Seals and opens pairing tokens; holds every key id that may still open one.

    Rotation: add the new key, make it ``current_kid``, and keep the old one until every token it
    sealed has expired (``ttl``).
    """

    def __init__(self, keys: Mapping[int, bytes], current_kid: int, ttl: float = 120.0) -> None:
        for kid, key in keys.items():
            if not 0 <= kid <= 255:
                raise ValueError("token key ids are 0..255")
            if len(key) != _KEY_LEN:
                raise ValueError("token keys are 32 bytes (AES-256)")
        if current_kid not in keys:
            raise ValueError("current_kid has no key")
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        self._aeads = {kid: AESGCM(bytes(key)) for kid, key in keys.items()}
        self._current_kid = current_kid
        self.ttl = ttl

    @classmethod
    def generate(cls, ttl: float = 120.0) -> TokenSealer:
        return cls({1: AESGCM.generate_key(bit_length=256)}, current_kid=1, ttl=ttl)

    def seal(self, room: bytes, now: float) -> tuple[str, TokenClaims]:
        if len(room) != ROOM_LEN:
            raise ValueError("a room id is 16 bytes")
        # Round to the millisecond the wire carries, so seal() and open() report equal claims.
        expires_ms = round((now + self.ttl) * 1000)
        claims = TokenClaims(TOKEN_VERSION, bytes(room), os.urandom(TOKEN_ID_LEN), expires_ms / 1000)
        kid = self._current_kid
        nonce = os.urandom(_NONCE_LEN)
        plaintext = _PLAINTEXT.pack(TOKEN_VERSION, claims.room, claims.token_id, expires_ms)
        sealed = self._aeads[kid].encrypt(nonce, plaintext, _aad(TOKEN_VERSION, kid))
        return b64u_encode(bytes((TOKEN_VERSION, kid)) + nonce + sealed), claims

    def open(self, token: str, now: float) -> TokenClaims:
        """Authenticate and decode a token; raises :class:`TokenError` and nothing else."""
        # Cap before decoding: a claim comes straight from the network.
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("bad_token")
        try:
            raw = b64u_decode(token, max_len=MAX_TOKEN_CHARS)
        except ValueError:
            raise TokenError("bad_token") from None
        if len(raw) != _SEALED_LEN or raw[0] != TOKEN_VERSION:
            raise TokenError("bad_token")
        version, kid = raw[0], raw[1]
        aead = self._aeads.get(kid)
        if aead is None:
            raise TokenError("bad_token")
        nonce, sealed = raw[_HEADER_LEN : _HEADER_LEN + _NONCE_LEN], raw[_HEADER_LEN + _NONCE_LEN :]
        try:
            plaintext = aead.decrypt(nonce, sealed, _aad(version, kid))
        except InvalidTag:
            raise TokenError("bad_token") from None
        inner_version, room, token_id, expires_ms = _PLAINTEXT.unpack(plaintext)
        if inner_version != version:
            # Only our own key could have produced this: a bug, but never accept it.
            raise TokenError("bad_token")
        claims = TokenClaims(version, room, token_id, expires_ms / 1000)
        # Expiry is checked after authentication so that a forged token never learns "expired".
        if now >= claims.expires_at:
            raise TokenError("token_expired")
        return claims


def _aad(version: int, kid: int) -> bytes:
    return _AAD_LABEL + bytes((version, kid))
