"""LAN discovery, the I/O part: advertise ``_peerbeam._tcp.local.`` with python-zeroconf, and
the interface plumbing the browser (peer_agent/mdns_browser.py) shares.

With mdns_browser.py, the only module that imports zeroconf. What the records say, how they are
checked and matched, and which interfaces are used is decided in peer_agent/discovery.py; this
shell feeds it the clock, the interfaces the system reports and the records the network sends.

Interfaces: every interface that is up, multicast-capable and has a non-loopback address (or
only those the caller names; see discovery.lan_interfaces), IPv4 by address and IPv6 by index,
so that both ``224.0.0.251`` and ``ff02::fb`` are served where an interface has both families.
The advertiser looks again every RECHECK_INTERVAL seconds: a laptop that changes networks keeps
being found (``async_update_interfaces``).

Withdrawal: ``close()`` unregisters the service, which sends goodbye packets (records with TTL
0, RFC 6762 §10.1) three times 125 ms apart; a browser drops the service when the first one
arrives instead of waiting for the PTR record's TTL (4500 s, RFC 6762 §10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Final

import ifaddr
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from crypto.kdf import LAN_EPOCH_PERIOD, lan_epoch_of
from crypto.records import PairingRecord

from .discovery import (
    NAME_NONCE_BYTES,
    SERVICE_TYPE,
    NetInterface,
    advert_tags,
    advertised_addresses,
    encode_txt,
    lan_interfaces,
    new_names,
    zeroconf_interfaces,
)
from .errors import PeerbeamError

log = logging.getLogger(__name__)

RecordsProvider = Callable[[], Sequence[PairingRecord]]
Clock = Callable[[], float]

RECHECK_INTERVAL: Final = 30.0  # s between looks at the interfaces and the pairings
_BOUNDARY_SLACK: Final = 0.05  # s past an epoch boundary, so the new epoch has surely begun


class LanUnavailable(PeerbeamError):
    """No network interface is up, so devices on the local network cannot be found."""


# <linux/if.h>. /sys shows the administrative flags; whether a cable or link is there (RUNNING)
# is in operstate (RFC 2863 ifOperStatus; "unknown" for drivers that do not report it).
_IFF_UP, _IFF_LOOPBACK, _IFF_MULTICAST = 0x1, 0x8, 0x1000
_OPER_DOWN = frozenset({"down", "lowerlayerdown", "notpresent", "dormant"})


def _multicast_up(name: str) -> bool:
    """From the interface flags on Linux; elsewhere (no /sys) every interface is assumed fit."""
    sys_net = Path("/sys/class/net") / name
    try:
        flags = int((sys_net / "flags").read_text(), 16)
        operstate = (sys_net / "operstate").read_text().strip()
    except (OSError, ValueError):
        return True
    wanted = _IFF_UP | _IFF_MULTICAST
    return flags & wanted == wanted and not flags & _IFF_LOOPBACK and operstate not in _OPER_DOWN


def system_interfaces() -> list[NetInterface]:
    """The interfaces and addresses the operating system reports now."""
    found = []
    for adapter in ifaddr.get_adapters():
        if adapter.index is None:
            continue
        ipv4 = tuple(ip.ip for ip in adapter.ips if isinstance(ip.ip, str))
        ipv6 = tuple(ip.ip[0] for ip in adapter.ips if isinstance(ip.ip, tuple))
        found.append(NetInterface(adapter.name, adapter.index, ipv4, ipv6,
                                  _multicast_up(adapter.name)))
    return found


def _ip_version(chosen: Sequence[NetInterface]) -> IPVersion:
    has4, has6 = any(i.ipv4 for i in chosen), any(i.ipv6 for i in chosen)
    if has4 and has6:
        return IPVersion.All
    return IPVersion.V6Only if has6 else IPVersion.V4Only


def open_zeroconf(chosen: Sequence[NetInterface]) -> AsyncZeroconf:
    """An mDNS endpoint on exactly the `chosen` interfaces, both families where present."""
    return AsyncZeroconf(interfaces=zeroconf_interfaces(chosen), ip_version=_ip_version(chosen))


def choose_interfaces(only: Collection[str] | None) -> list[NetInterface]:
    """The LAN interfaces of this machine now (see discovery.lan_interfaces)."""
    chosen = lan_interfaces(system_interfaces(), only)
    if not chosen:
        raise LanUnavailable()
    return chosen


async def cancel_and_wait(task: asyncio.Future[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class LanAdvertiser:
    """Advertises this agent on the LAN until ``close()``; keeps its tags and addresses fresh.

    `records` is called at start, at every epoch boundary, every RECHECK_INTERVAL and after
    ``refresh()``: pass e.g. ``book.active``. `now` is the clock for the epochs (tests inject
    one); the delays it leads to are slept on the event loop's clock.
    """

    def __init__(self, records: RecordsProvider, port: int, *, now: Clock = time.time,
                 interfaces: Collection[str] | None = None) -> None:
        if not 0 < port < 65536:
            raise ValueError("port out of range")
        self._records = records
        self.port = port
        self._now = now
        self._only = interfaces
        self.names = new_names(secrets.token_bytes(NAME_NONCE_BYTES))
        self._decoy_key = secrets.token_bytes(32)
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._chosen: list[NetInterface] = []
        self._broadcast: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def txt(self) -> bytes:
        """The TXT record currently advertised (b"" before start)."""
        return self._info.text if self._info is not None else b""

    @property
    def addresses(self) -> list[str]:
        return advertised_addresses(self._chosen)

    def _make_info(self) -> AsyncServiceInfo:
        txt = encode_txt(advert_tags(self._records(), self._now(), self._decoy_key))
        return AsyncServiceInfo(SERVICE_TYPE, self.names.instance, port=self.port,
                                properties=txt, server=self.names.host,
                                parsed_addresses=advertised_addresses(self._chosen))

    async def start(self) -> None:
        """Probe for the (random) name and register; announcements continue in the background."""
        if self._zc is not None or self._closed:
            raise RuntimeError("start() is called once")
        self._chosen = choose_interfaces(self._only)
        self._zc = open_zeroconf(self._chosen)
        self._info = self._make_info()
        self._broadcast = asyncio.ensure_future(await self._zc.async_register_service(self._info))
        log.info("advertising on the LAN: %s port %d on %s", self.names.instance, self.port,
                 ", ".join(i.name for i in self._chosen))
        self._task = asyncio.create_task(self._refresh_loop())

    def refresh(self) -> None:
        """The pairings changed: publish new tags now rather than at the next check."""
        self._wake.set()

    async def _refresh_loop(self) -> None:
        while True:
            now = self._now()
            to_boundary = (lan_epoch_of(now) + 1) * LAN_EPOCH_PERIOD - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(),
                                       min(RECHECK_INTERVAL, to_boundary + _BOUNDARY_SLACK))
            self._wake.clear()
            try:
                await self._update()
            except Exception:  # keep the last good advertisement; try again next time
                log.warning("could not update the LAN advertisement", exc_info=True)

    async def _update(self) -> None:
        assert self._zc is not None and self._info is not None
        chosen = lan_interfaces(system_interfaces(), self._only)
        if chosen and chosen != self._chosen:
            log.info("LAN interfaces changed: %s", ", ".join(i.name for i in chosen))
            await self._zc.async_update_interfaces(zeroconf_interfaces(chosen), _ip_version(chosen))
            self._chosen = chosen
        info = self._make_info()
        if info.text == self._info.text and info.addresses == self._info.addresses:
            return
        await cancel_and_wait(self._broadcast)
        self._info = info
        self._broadcast = asyncio.ensure_future(await self._zc.async_update_service(info))

    async def close(self) -> None:
        """Withdraw the service (goodbye packets) and close the sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._task)
        # An announcement still in flight after the goodbyes would bring the service back.
        await cancel_and_wait(self._broadcast)
        if self._zc is not None:
            try:
                if self._info is not None:
                    await (await self._zc.async_unregister_service(self._info))
            finally:
                await self._zc.async_close()
            log.info("LAN advertisement withdrawn: %s", self.names.instance)
