"""The peer's way to its agent on the LAN: find it (mDNS, or the address the user gave), connect
over TCP, and run the KK handshake and the session setup over that connection (lan_signal.py).

mDNS is only a hint (DESIGN "Reconnect"). Several services may carry our pairing's tag — anyone
can copy a TXT record — so each is tried in turn, at most MAX_CANDIDATES an attempt, and those
whose handshake failed lately go last: a rogue that copies the advert does not get to go first
every time, and gets nothing but a handshake message it cannot open. A candidate that fails is
reported (``lan_refused``) and skipped; the node then goes on to the server, if there is one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.records import PairingRecord
from signaling.schema import ErrorCode, Hello

from .config import NodeConfig
from .errors import PeerbeamError
from .handshake import LAN_PROLOGUE, HandshakeCompleted, SecureSession
from .lan_signal import LanSignal, parse_address
from .mdns import LanUnavailable
from .mdns_browser import LanBrowser, LanService
from .report import Reporter
from .rtc import RtcLink
from .session import DeviceRemoved, Dialogue, ToldRemoved, establish

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 4
MAX_SUSPECTS = 64
_ServiceKey = tuple[str, tuple[str, ...], int]


@dataclass(frozen=True)
class LanConnected:
    """A session set up over a LAN connection, ready for a PeerSession."""

    done: HandshakeCompleted
    dialogue: Dialogue
    link: RtcLink


class _AttemptFailed(PeerbeamError):
    """One candidate did not work; ``authenticated``: it passed the handshake (the real agent)."""

    def __init__(self, message: str, *, code: ErrorCode, authenticated: bool) -> None:
        super().__init__(message, code=code)
        self.authenticated = authenticated


def _key(service: LanService) -> _ServiceKey:
    return (service.name, service.addresses, service.port)


class LanDialer:
    """Connects a paired peer to its agent over the LAN. Keeps one mDNS browser for the life of
    the node, so that reconnects find the agent at once."""

    def __init__(self, *, config: NodeConfig, reporter: Reporter, hello: Callable[[], Hello],
                 identity: X25519PrivateKey) -> None:
        self.config = config
        self.reporter = reporter
        self._hello = hello
        self._identity = identity
        self._browser: LanBrowser | None = None
        self._suspects: dict[_ServiceKey, float] = {}  # failed the handshake lately, and when

    async def _start_browser(self) -> LanBrowser | None:
        if self._browser is None:
            browser = LanBrowser()
            try:
                await browser.start()
            except (LanUnavailable, OSError) as exc:
                logger.info("no LAN discovery: %s", getattr(exc, "message", type(exc).__name__))
                await browser.close()
                return None
            self._browser = browser
        return self._browser

    async def connect(self, record: PairingRecord,
                      timeout: float | None) -> tuple[LanConnected | None, set[LanService]]:
        """The agent of ``record`` over the LAN, or None; and the services tried. DeviceRemoved
        and ToldRemoved (the pairing is gone on one side) are raised: they end the pairing."""
        tried: set[LanService] = set()
        if self.config.lan_address is not None:
            try:
                return await self._connect(record, [parse_address(self.config.lan_address)]), tried
            except _AttemptFailed as exc:
                self.reporter.emit("lan_refused", side="peer", name=record.peer_name,
                                   address=self.config.lan_address, reason=exc.message)
                return None, tried
        browser = await self._start_browser()
        if browser is None:
            return None, tried
        browse = self.config.lan_browse_timeout
        if await browser.find([record], browse if timeout is None else min(timeout, browse)) is None:
            return None, tried
        candidates = sorted(browser.matches([record], time.time()),
                            key=lambda m: self._suspects.get(_key(m.service), 0.0))
        for match in candidates[:MAX_CANDIDATES]:
            service = match.service
            tried.add(service)
            try:
                return await self._connect(record, [(a, service.port) for a in service.addresses]), tried
            except _AttemptFailed as exc:
                if not exc.authenticated:
                    self._suspect(service)
                self.reporter.emit("lan_refused", side="peer", name=record.peer_name, service=service.name,
                                   address=f"{service.addresses[0]}:{service.port}", reason=exc.message,
                                   authenticated=exc.authenticated)
        return None, tried

    async def watch(self, record: PairingRecord, wait: float, exclude: set[LanService]) -> bool:
        """True as soon as a service of ``record`` other than ``exclude`` shows up; False after
        ``wait`` seconds, or when there is no browser (address mode, no LAN)."""
        if self._browser is None or self.config.lan_address is not None:
            return False
        return await self._browser.find([record], wait, exclude=exclude) is not None

    def _suspect(self, service: LanService) -> None:
        self._suspects[_key(service)] = time.monotonic()
        while len(self._suspects) > MAX_SUSPECTS:
            del self._suspects[min(self._suspects, key=self._suspects.__getitem__)]

    async def _connect(self, record: PairingRecord, targets: list[tuple[str, int]]) -> LanConnected:
        """TCP to the agent, then the KK handshake and the usual setup over that connection.
        ICE runs with host candidates only (no STUN or TURN on a LAN: ``iceServers=[]``)."""
        try:
            signal = await LanSignal.dial(targets, timeout=min(2.0, self.config.lan_handshake_timeout))
        except PeerbeamError as exc:
            raise _AttemptFailed(exc.message, code=exc.code, authenticated=False) from None
        dialogue = Dialogue(signal, SecureSession.for_reconnect(
            role=record.role, hello=self._hello(), identity=self._identity, pair_secret=record.pair_secret,
            peer_key=record.peer_key, prologue=LAN_PROLOGUE))
        authenticated = False

        def on_handshake(done: HandshakeCompleted) -> None:
            nonlocal authenticated
            authenticated = True

        try:
            done, link = await establish(
                dialogue, role=record.role, pairing=False, ice_servers=[], config=self.config,
                tombstone=record.removed_at is not None, on_handshake=on_handshake,
                handshake_timeout=self.config.lan_handshake_timeout)
        except (ToldRemoved, DeviceRemoved):
            await dialogue.close()
            raise
        except PeerbeamError as exc:
            await dialogue.close()
            raise _AttemptFailed(exc.message, code=exc.code, authenticated=authenticated) from None
        except BaseException:
            await dialogue.close()
            raise
        return LanConnected(done, dialogue, link)

    async def close(self) -> None:
        if self._browser is not None:
            browser, self._browser = self._browser, None
            await browser.close()
