"""The end-to-end layer between two devices, carried through the server as opaque envelopes.

Pure: no sockets, no clocks. ``SecureSession`` runs the Noise handshake (NKpsk0 for first
pairing, KKpsk0 for reconnect — DESIGN: Pairing step 4, Reconnect) and then seals every peer
signal (SDP, ICE candidates, accept/reject) as a Noise transport message, so the signaling
server routes ciphertext only.

Envelope framing (the bytes inside ``relay.data``): one kind byte, then the body.

* ``0x01`` Noise handshake message; its payload is our ``Hello``;
* ``0x02`` Noise transport message; the plaintext is one ``PeerSignal`` (JSON);
* ``0x03`` abort, unauthenticated: a short ASCII code. It can only make a pairing fail — which
  a hostile server can do anyway by dropping messages — so it needs no key;
* ``0x04`` Noise transport message whose plaintext is one binary data frame (peer_agent/frames.py):
  the LAN fast path between two Python peers (peer_agent/fast_path.py). Only a direct LAN
  connection carries these; the phone app never sends them.

Any AEAD failure, a message out of turn, or an identity that differs from the one expected is
treated as interception: the session is dead and the caller must abort on both sides.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Literal, NoReturn

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.errors import CryptoError
from crypto.kdf import comparison_code, pairing_psk, reconnect_psk
from crypto.keys import public_bytes
from crypto.noise import HandshakeState, Transport
from signaling.schema import Hello, PeerSignal, SchemaError, decode_signal, encode

from .errors import InterceptionError

logger = logging.getLogger(__name__)

Role = Literal["initiator", "responder"]

# The prologue binds the purpose of the handshake (Noise rev 34 §6): a pairing message cannot
# be replayed into a reconnect and the other way round.
PAIR_PROLOGUE = b"peerbeam/1 pair"
RECONNECT_PROLOGUE = b"peerbeam/1 reconnect"
# A reconnect over a direct LAN connection (peer_agent/lan_signal.py) has its own prologue, so a
# handshake message seen on one route cannot be replayed into the other.
LAN_PROLOGUE = b"peerbeam/1 lan reconnect"


class Kind(enum.IntEnum):
    HANDSHAKE = 1
    TRANSPORT = 2
    ABORT = 3
    FRAME = 4


@dataclass(frozen=True)
class HandshakeCompleted:
    """The Noise handshake finished; ``code`` is the 6-digit comparison code."""

    peer: Hello
    code: str
    handshake_hash: bytes
    chaining_key: bytes


@dataclass(frozen=True)
class SignalReceived:
    signal: PeerSignal


@dataclass(frozen=True)
class PeerAborted:
    """The other side gave up (it saw a failure we may not have seen)."""

    reason: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A binary data frame that came as a Noise transport message (the LAN fast path)."""

    frame: bytes


Event = HandshakeCompleted | SignalReceived | PeerAborted | FrameReceived


def abort_envelope(reason: str) -> bytes:
    return bytes([Kind.ABORT]) + reason.encode("ascii", "replace")[:64]


class SecureSession:
    """One Noise session between two devices, fed envelopes, returning envelopes and events."""

    def __init__(
        self,
        *,
        role: Role,
        hello: Hello,
        identity: X25519PrivateKey,
        psk: bytes,
        prologue: bytes,
        pattern: Literal["NKpsk0", "KKpsk0"],
        remote_key: bytes | None,
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        # ``ephemeral`` exists only so that tests/vectors/make_session_vectors.py can record a
        # reproducible exchange for the browser's tests; never pass one otherwise: a reused
        # ephemeral key gives up forward secrecy.
        self.role = role
        self._hello = hello
        self._expected_remote = remote_key
        # In NK the initiator (the joining device) has no static key: it proves knowledge of
        # the QR secret through the psk, and announces its identity key inside the encrypted
        # payload; the first KK reconnect then authenticates that key.
        static = identity if (pattern == "KKpsk0" or role == "responder") else None
        self._hs = HandshakeState(
            pattern,
            initiator=role == "initiator",
            prologue=prologue,
            psk=psk,
            s=static,
            rs=remote_key if (role == "initiator" or pattern == "KKpsk0") else None,
            e=ephemeral,
        )
        self._transport: Transport | None = None
        self._dead = False

    # -- constructors for the two uses ----------------------------------------------------------

    @classmethod
    def for_pairing(
        cls,
        *,
        role: Role,
        hello: Hello,
        identity: X25519PrivateKey,
        qr_secret: bytes,
        agent_key: bytes | None,
        ephemeral: X25519PrivateKey | None = None,
    ) -> SecureSession:
        """NKpsk0: the joiner knows the agent's key and the secret from the QR."""
        return cls(
            role=role,
            hello=hello,
            identity=identity,
            psk=pairing_psk(qr_secret),
            prologue=PAIR_PROLOGUE,
            pattern="NKpsk0",
            remote_key=agent_key if role == "initiator" else None,
            ephemeral=ephemeral,
        )

    @classmethod
    def for_reconnect(
        cls,
        *,
        role: Role,
        hello: Hello,
        identity: X25519PrivateKey,
        pair_secret: bytes,
        peer_key: bytes,
        ephemeral: X25519PrivateKey | None = None,
        prologue: bytes = RECONNECT_PROLOGUE,
    ) -> SecureSession:
        """KKpsk0: both long-term keys known from the pairing record, psk from its secret.
        ``prologue`` is LAN_PROLOGUE over a direct LAN connection."""
        return cls(
            role=role,
            hello=hello,
            identity=identity,
            psk=reconnect_psk(pair_secret),
            prologue=prologue,
            pattern="KKpsk0",
            remote_key=peer_key,
            ephemeral=ephemeral,
        )

    # -- driving it -----------------------------------------------------------------------------

    @property
    def established(self) -> bool:
        return self._transport is not None

    def start(self) -> bytes:
        """The initiator's first handshake message."""
        if self.role != "initiator":
            raise RuntimeError("only the initiator starts")
        return bytes([Kind.HANDSHAKE]) + self._hs.write_message(encode(self._hello))

    def seal(self, signal: PeerSignal) -> bytes:
        if self._transport is None or self._dead:
            raise RuntimeError("session not established")
        return bytes([Kind.TRANSPORT]) + self._transport.encrypt(encode(signal))

    def seal_frame(self, frame: bytes) -> bytes:
        """A binary data frame as a ``Kind.FRAME`` envelope (see ``encrypt_frame``)."""
        return bytes([Kind.FRAME]) + self.encrypt_frame(frame)

    def encrypt_frame(self, frame: bytes) -> bytes:
        """The Noise transport message (≤ 65535 bytes with its tag, Noise rev 34 §3) of a
        ``Kind.FRAME`` envelope, without the kind byte, so that bulk data is not copied once
        more to put it in front. Same cipher and nonce sequence as ``seal``: the caller writes
        envelopes in the order they were sealed, on one ordered stream."""
        if self._transport is None or self._dead:
            raise RuntimeError("session not established")
        return self._transport.encrypt(frame)

    def receive(self, envelope: bytes) -> tuple[list[bytes], list[Event]]:
        """Feed one envelope; get envelopes to send back and events. Raises InterceptionError."""
        if self._dead:
            raise InterceptionError("The session was already aborted.")
        if not envelope:
            self._fail("empty envelope")
        kind, body = envelope[0], envelope[1:]
        if kind == Kind.ABORT:
            self._dead = True
            return [], [PeerAborted(body.decode("ascii", "replace"))]
        try:
            if kind == Kind.HANDSHAKE and self._transport is None:
                return self._on_handshake(body)
            if kind == Kind.TRANSPORT and self._transport is not None:
                plaintext = self._transport.decrypt(body)
                return [], [SignalReceived(decode_signal(plaintext))]
            if kind == Kind.FRAME and self._transport is not None:
                # A view, not a slice: bulk data is copied once less on its way in.
                return [], [FrameReceived(self._transport.decrypt(memoryview(envelope)[1:]))]
        except (CryptoError, SchemaError) as exc:
            self._fail(type(exc).__name__)
        self._fail("message out of turn")

    def _on_handshake(self, body: bytes) -> tuple[list[bytes], list[Event]]:
        payload = self._hs.read_message(body)
        peer = decode_signal(payload)
        if not isinstance(peer, Hello):
            self._fail("handshake payload is not a hello")
        # The identity a device announces must be the one we expected (from the QR for the
        # agent; from the pairing record for reconnects), or someone stands in between.
        if self._expected_remote is not None and peer.identity_key != self._expected_remote:
            self._fail("identity key mismatch")
        out: list[bytes] = []
        if self.role == "responder":
            out.append(bytes([Kind.HANDSHAKE]) + self._hs.write_message(encode(self._hello)))
        if not self._hs.finished:
            self._fail("handshake incomplete")
        self._transport = self._hs.transport()
        done = HandshakeCompleted(
            peer=peer,
            code=comparison_code(self._transport.handshake_hash),
            handshake_hash=self._transport.handshake_hash,
            chaining_key=self._transport.chaining_key,
        )
        return out, [done]

    def _fail(self, why: str) -> NoReturn:
        # ``why`` goes to the debug log only; the user sees the one sentence of the error.
        logger.debug("secure session failed: %s", why)
        self._dead = True
        raise InterceptionError() from None


def hello_for(name: str, identity: X25519PrivateKey, device: Literal["pc", "phone", "cli"]) -> Hello:
    return Hello(name=name, identity_key=public_bytes(identity), device=device)

