"""The Noise Protocol Framework, revision 34, reduced to what peerbeam speaks.

Two handshakes (DESIGN "Pairing" step 4 and "Reconnect"):

* ``Noise_NKpsk0_25519_AESGCM_SHA256`` — first contact: the joining device knows the agent's
  static key from the QR code, and both know the QR secret, mixed in as the psk. A server that
  swaps keys cannot finish it.
* ``Noise_KKpsk0_25519_AESGCM_SHA256`` — reconnect: both static keys are known from the pairing
  record, and the psk comes from the pair secret.

The objects follow the spec's own structure (§5): :class:`CipherState`, :class:`SymmetricState`,
:class:`HandshakeState`; patterns are data (§7), psk handling is §9. This module does no I/O:
messages in, messages out. Any failure while reading is fatal for the handshake or transport,
because a half-processed message has already changed the hash (§5.3).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import NoiseError
from .keys import public_bytes

Pattern = Literal["NKpsk0", "KKpsk0"]
Token = Literal["e", "s", "ee", "es", "se", "ss", "psk"]

MAX_MESSAGE_LEN = 65535  # §3: every Noise message, handshake or transport
DHLEN = 32
HASHLEN = 32
TAGLEN = 16
PSK_LEN = 32
_MAX_NONCE = 2**64 - 1  # §5.1: reserved, never used to encrypt


@dataclass(frozen=True)
class _PatternSpec:
    # Pre-messages (§7.1) name the static keys each side knows in advance; the message patterns
    # alternate initiator -> responder, responder -> initiator.
    initiator_pre: tuple[Token, ...]
    responder_pre: tuple[Token, ...]
    messages: tuple[tuple[Token, ...], ...]


# §7.4 (NK, KK) with the psk0 modifier of §9.4: "psk" first in the first message.
PATTERNS: dict[Pattern, _PatternSpec] = {
    "NKpsk0": _PatternSpec(
        initiator_pre=(),
        responder_pre=("s",),
        messages=(("psk", "e", "es"), ("e", "ee")),
    ),
    "KKpsk0": _PatternSpec(
        initiator_pre=("s",),
        responder_pre=("s",),
        messages=(("psk", "e", "es", "ss"), ("e", "ee", "se")),
    ),
}


def protocol_name(pattern: Pattern) -> bytes:
    return f"Noise_{pattern}_25519_AESGCM_SHA256".encode("ascii")


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _hkdf2(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    # §4.3: HKDF with the chaining key as salt and one-byte counters as info, from RFC 5869.
    temp_key = _hmac(chaining_key, ikm)
    out1 = _hmac(temp_key, b"\x01")
    out2 = _hmac(temp_key, out1 + b"\x02")
    return out1, out2


def _hkdf3(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes, bytes]:
    temp_key = _hmac(chaining_key, ikm)
    out1 = _hmac(temp_key, b"\x01")
    out2 = _hmac(temp_key, out1 + b"\x02")
    out3 = _hmac(temp_key, out2 + b"\x03")
    return out1, out2, out3


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        # cryptography refuses an all-zero shared secret (a low-order point, §12.1): a peer that
        # sends one is attacking the handshake.
        raise NoiseError() from None


class CipherState:
    """§5.1: a key and a counter nonce; AESGCM with the nonce laid out as §12.4 says."""

    def __init__(self, key: bytes | None = None) -> None:
        self._aead: AESGCM | None = AESGCM(key) if key is not None else None
        self.n = 0

    def has_key(self) -> bool:
        return self._aead is not None

    def _nonce(self) -> bytes:
        # §12.4: 32 bits of zeros followed by big-endian encoding of n.
        if self.n >= _MAX_NONCE:
            raise NoiseError("The secure channel has used up its nonces; reconnect.")
        return b"\x00\x00\x00\x00" + self.n.to_bytes(8, "big")

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        ciphertext = self._aead.encrypt(self._nonce(), plaintext, ad)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes | memoryview) -> bytes:
        if self._aead is None:
            return bytes(ciphertext)
        if len(ciphertext) < TAGLEN:
            raise NoiseError()
        try:
            plaintext = self._aead.decrypt(self._nonce(), ciphertext, ad)
        except InvalidTag:
            raise NoiseError() from None  # §5.1: n is not incremented on failure
        self.n += 1
        return plaintext


class SymmetricState:
    """§5.2: chaining key ``ck``, handshake hash ``h`` and the current cipher."""

    def __init__(self, name: bytes) -> None:
        # §5.2 InitializeSymmetric: names of at most HASHLEN bytes are zero-padded, longer hashed.
        self.h = name.ljust(HASHLEN, b"\x00") if len(name) <= HASHLEN else _hash(name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = _hkdf2(self.ck, ikm)
        self.cipher = CipherState(temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = _hkdf3(self.ck, ikm)
        self.mix_hash(temp_h)
        self.cipher = CipherState(temp_k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = _hkdf2(self.ck, b"")
        return CipherState(k1), CipherState(k2)


class Transport:
    """The two CipherStates after Split(), oriented for one side (§5.3)."""

    def __init__(
        self,
        send: CipherState,
        receive: CipherState,
        *,
        handshake_hash: bytes,
        chaining_key: bytes,
        remote_static: bytes | None,
    ) -> None:
        self._send = send
        self._receive = receive
        self._broken = False
        self.handshake_hash = handshake_hash
        # Kept after Split() on purpose: peerbeam derives the pair secret and the DTLS binding key
        # from it (crypto.kdf, crypto.binding), each under its own HKDF purpose label.
        self.chaining_key = chaining_key
        self.remote_static = remote_static

    def encrypt(self, plaintext: bytes, ad: bytes = b"") -> bytes:
        if len(plaintext) + TAGLEN > MAX_MESSAGE_LEN:
            raise ValueError("a Noise transport message is at most 65535 bytes")
        return self._send.encrypt_with_ad(ad, plaintext)

    def decrypt(self, ciphertext: bytes | memoryview, ad: bytes = b"") -> bytes:
        # The spec would let a caller retry after a failure (n is not consumed); on our ordered,
        # reliable channels a failure means tampering, so the transport stays broken.
        if self._broken or len(ciphertext) > MAX_MESSAGE_LEN:
            self._broken = True
            raise NoiseError()
        try:
            return self._receive.decrypt_with_ad(ad, ciphertext)
        except NoiseError:
            self._broken = True
            raise


class HandshakeState:
    """§5.3 for the two patterns in :data:`PATTERNS`.

    Local misuse (writing out of turn, asking for the transport too early) raises RuntimeError;
    anything wrong with what the peer sent raises :class:`NoiseError`, after which the handshake
    is dead.
    """

    def __init__(
        self,
        pattern: Pattern,
        *,
        initiator: bool,
        prologue: bytes,
        psk: bytes,
        s: X25519PrivateKey | None = None,
        rs: bytes | None = None,
        e: X25519PrivateKey | None = None,
    ) -> None:
        spec = PATTERNS[pattern]
        # Both patterns carry static keys only in pre-messages (§7.1), so message tokens are
        # "e", DH tokens and "psk"; an "s" token inside a message is not implemented.
        assert all(t != "s" for message in spec.messages for t in message)
        local_pre, remote_pre = (
            (spec.initiator_pre, spec.responder_pre)
            if initiator
            else (spec.responder_pre, spec.initiator_pre)
        )
        # This side's static key is needed if it is pre-known to the peer or used in a DH token
        # ("es"/"se"/"ss" name the initiator's key first, the responder's second).
        local_letter = 0 if initiator else 1
        needs_s = "s" in local_pre or any(
            len(t) == 2 and t[local_letter] == "s" for message in spec.messages for t in message
        )
        if len(psk) != PSK_LEN:
            raise ValueError("a Noise psk is 32 bytes (§9.2)")
        if needs_s and s is None:
            raise ValueError(f"{pattern}: this side needs its static key s")
        if "s" in remote_pre and (rs is None or len(rs) != DHLEN):
            raise ValueError(f"{pattern}: this side needs the peer's 32-byte static key rs")
        self._spec = spec
        self._initiator = initiator
        self._psk = bytes(psk)
        self._s = s
        self._e = e
        self._rs = bytes(rs) if rs is not None else None
        self._re: bytes | None = None
        self._index = 0
        self._failed = False
        self._transport: Transport | None = None
        self._sym = SymmetricState(protocol_name(pattern))
        self._sym.mix_hash(prologue)
        # §7.1: pre-message keys are hashed initiator's first, then the responder's.
        for side_is_initiator, pre in ((True, spec.initiator_pre), (False, spec.responder_pre)):
            for _token in pre:  # only "s" occurs in our pre-messages
                key = self._static_of(side_is_initiator)
                self._sym.mix_hash(key)

    def _static_of(self, side_is_initiator: bool) -> bytes:
        if side_is_initiator == self._initiator:
            assert self._s is not None
            return public_bytes(self._s)
        assert self._rs is not None
        return self._rs

    @property
    def finished(self) -> bool:
        return self._index >= len(self._spec.messages)

    @property
    def handshake_hash(self) -> bytes:
        return self._sym.h

    def _my_turn(self) -> bool:
        return (self._index % 2 == 0) == self._initiator

    def write_message(self, payload: bytes = b"") -> bytes:
        if self._failed or self.finished or not self._my_turn():
            raise RuntimeError("not this side's turn to write a handshake message")
        tokens = self._spec.messages[self._index]
        # Checked before any state changes: every message here is e's + payload + tag (psk0
        # keys the cipher before the first payload).
        if DHLEN * tokens.count("e") + len(payload) + TAGLEN > MAX_MESSAGE_LEN:
            raise ValueError("a Noise handshake message is at most 65535 bytes")
        out = bytearray()
        for token in tokens:
            if token == "e":
                if self._e is None:
                    self._e = X25519PrivateKey.generate()
                e_pub = public_bytes(self._e)
                out += e_pub
                self._mix_ephemeral(e_pub)
            else:
                self._mix_secret(token)
        out += self._sym.encrypt_and_hash(payload)
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self._failed or self.finished or self._my_turn() or len(message) > MAX_MESSAGE_LEN:
            self._failed = True
            raise NoiseError()
        try:
            payload = self._read(memoryview(message))
        except NoiseError:
            self._failed = True
            raise
        self._index += 1
        return payload

    def _read(self, message: memoryview) -> bytes:
        pos = 0
        for token in self._spec.messages[self._index]:
            if token == "e":
                if len(message) - pos < DHLEN:
                    raise NoiseError()
                self._re = bytes(message[pos : pos + DHLEN])
                pos += DHLEN
                self._mix_ephemeral(self._re)
            else:
                self._mix_secret(token)
        return self._sym.decrypt_and_hash(bytes(message[pos:]))

    def _mix_ephemeral(self, e_pub: bytes) -> None:
        self._sym.mix_hash(e_pub)
        # §9.2: in a psk handshake an ephemeral key is also mixed into the key, so that the
        # encryption key never depends on the psk alone.
        self._sym.mix_key(e_pub)

    def _mix_secret(self, token: Token) -> None:
        if token == "psk":
            self._sym.mix_key_and_hash(self._psk)
            return
        # §5.3: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder; "se" mirrors.
        first, second = token[0], token[1]
        if not self._initiator:
            first, second = second, first
        local = self._e if first == "e" else self._s
        remote = self._re if second == "e" else self._rs
        if local is None or remote is None:  # pragma: no cover - guarded by __init__ and order
            raise RuntimeError(f"missing key for {token}")
        self._sym.mix_key(_dh(local, remote))

    def transport(self) -> Transport:
        """The transport after Split() (§5.2); the same object on every call.

        Splitting twice would hand out a second pair of ciphers starting again at nonce 0,
        which reuses (key, nonce) pairs: never do that.
        """
        if not self.finished or self._failed:
            raise RuntimeError("the handshake is not finished")
        if self._transport is None:
            c1, c2 = self._sym.split()
            send, receive = (c1, c2) if self._initiator else (c2, c1)
            self._transport = Transport(
                send,
                receive,
                handshake_hash=self._sym.h,
                chaining_key=self._sym.ck,
                remote_static=self._rs,
            )
        return self._transport

