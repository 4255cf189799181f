"""LAN discovery, browsing: watch the LAN for ``_peerbeam._tcp.local.`` agents (python-zeroconf)
and pick out the one of a pairing.

The network is hostile: every TXT record goes through discovery.decode_txt, a browser holds at
most MAX_SERVICES services of at most MAX_ADDRESSES addresses, and each service is resolved by
one task at a time. A service disappears when its agent's goodbye packets arrive (RFC 6762
§10.1), at once, or when its records expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final

from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from crypto.records import PairingRecord

from .discovery import (
    SERVICE_TYPE,
    BadLanAdvert,
    LanAdvert,
    decode_txt,
    match_advert,
    tag_table,
)
from .mdns import Clock, cancel_and_wait, choose_interfaces, open_zeroconf

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_MS: Final = 3000  # one SRV/TXT/A/AAAA lookup (zeroconf counts milliseconds)
MAX_SERVICES: Final = 64  # services a browser keeps: a LAN cannot make it hold more
MAX_ADDRESSES: Final = 16  # addresses kept per service

@dataclass(frozen=True, slots=True)
class LanService:
    """A peerbeam agent seen on the LAN. IPv4 addresses first; IPv6 link-local ones carry
    their scope ("fe80::1%3")."""

    name: str
    addresses: tuple[str, ...]
    port: int
    advert: LanAdvert


@dataclass(frozen=True, slots=True)
class LanServiceAdded:
    service: LanService


@dataclass(frozen=True, slots=True)
class LanServiceUpdated:
    service: LanService


@dataclass(frozen=True, slots=True)
class LanServiceRemoved:
    name: str


LanEvent = LanServiceAdded | LanServiceUpdated | LanServiceRemoved


@dataclass(frozen=True, slots=True)
class LanMatch:
    """A paired agent found on the LAN: connect to ``service.addresses`` on ``service.port``."""

    record: PairingRecord
    service: LanService


def _service_from(info: AsyncServiceInfo) -> LanService:
    if info.port is None or not 0 < info.port < 65536:
        raise BadLanAdvert("A peerbeam service on the network has no valid port.")
    # A link-local IPv6 address is usable only with its scope (the interface it was heard on);
    # zeroconf may not know that yet on the first answer: leave it out until it does.
    addresses = tuple(a for a in info.parsed_scoped_addresses()
                      if "%" in a or not ipaddress.ip_address(a).is_link_local)[:MAX_ADDRESSES]
    if not addresses:
        raise BadLanAdvert("A peerbeam service on the network has no address.")
    return LanService(info.name, addresses, info.port, decode_txt(info.text))


class LanBrowser:
    """Watches the LAN for peerbeam agents; ``find`` picks out the one of a pairing."""

    def __init__(self, on_event: Callable[[LanEvent], None] | None = None, *,
                 interfaces: Collection[str] | None = None) -> None:
        self._on_event = on_event
        self._only = interfaces
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._services: dict[str, LanService] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # changed while being resolved: resolve once more
        self._changed = asyncio.Event()
        self._warned_full = False

    @property
    def services(self) -> dict[str, LanService]:
        return dict(self._services)

    async def start(self) -> None:
        if self._zc is not None:
            raise RuntimeError("start() is called once")
        self._zc = open_zeroconf(choose_interfaces(self._only))
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE,
                                            handlers=[self._on_change])

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            self._forget(name)
            return
        task = self._resolving.get(name)
        if task is not None:
            self._again.add(name)
        elif name in self._services or len(self._services) + len(self._resolving) < MAX_SERVICES:
            self._resolving[name] = asyncio.create_task(self._resolve(name))
        elif not self._warned_full:
            self._warned_full = True
            log.warning("more than %d peerbeam services on the LAN; ignoring the rest", MAX_SERVICES)

    async def _resolve(self, name: str) -> None:
        assert self._zc is not None
        try:
            while True:
                self._again.discard(name)
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                if await info.async_request(self._zc.zeroconf, RESOLVE_TIMEOUT_MS):
                    try:
                        self._publish(_service_from(info))
                    except BadLanAdvert as exc:
                        log.debug("ignoring %s: %s", name, exc.message)
                        self._forget(name, cancel=False)
                if name not in self._again:
                    return
        finally:
            self._resolving.pop(name, None)

    def _publish(self, service: LanService) -> None:
        old = self._services.get(service.name)
        if old == service:
            return
        self._services[service.name] = service
        self._emit(LanServiceAdded(service) if old is None else LanServiceUpdated(service))

    def _forget(self, name: str, cancel: bool = True) -> None:
        task = self._resolving.pop(name, None)
        if cancel and task is not None:
            task.cancel()
        self._again.discard(name)
        if self._services.pop(name, None) is not None:
            self._emit(LanServiceRemoved(name))

    def _emit(self, event: LanEvent) -> None:
        self._changed.set()
        if self._on_event is not None:
            self._on_event(event)

    def matches(self, records: Iterable[PairingRecord], now: float,
                exclude: Collection[LanService] = ()) -> list[LanMatch]:
        """Every service seen so far whose tags belong to one of `records`, in the order they
        were seen, leaving out `exclude`. Several may match: anyone can copy a TXT record, and
        only the handshake tells the real agent from a copy."""
        table = tag_table(records, now)
        found = []
        for service in self._services.values():
            record = match_advert(service.advert, table)
            if record is not None and service not in exclude:
                found.append(LanMatch(record, service))
        return found

    def match(self, records: Iterable[PairingRecord], now: float,
              exclude: Collection[LanService] = ()) -> LanMatch | None:
        """The first service seen so far whose tags belong to one of `records`."""
        found = self.matches(records, now, exclude)
        return found[0] if found else None

    async def find(self, records: Iterable[PairingRecord], timeout: float,
                   now: Clock = time.time, exclude: Collection[LanService] = ()) -> LanMatch | None:
        """Wait up to `timeout` seconds for the agent of one of `records` (other than those in
        `exclude`); None if none shows."""
        wanted = list(records)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.match(wanted, now(), exclude)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._changed.clear()  # no await since match(): no change can slip in between
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        """Stop browsing and close the sockets. Idempotent."""
        if self._browser is not None:  # first: no new resolutions start after this
            browser, self._browser = self._browser, None
            await browser.async_cancel()
        for task in list(self._resolving.values()):
            await cancel_and_wait(task)
        if self._zc is not None:
            zc, self._zc = self._zc, None
            await zc.async_close()
