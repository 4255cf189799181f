"""Fixtures shared by every test: the network-namespace lab and its safety nets."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.lab import IP, RUN_PREFIX, Host, Lab, delete_run_leftovers

_LAB_FIXTURES = {"lab", "lan_pair"}


@functools.cache
def netns_unavailable() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "network-namespace tests need root (ip netns add)"
    if shutil.which(IP) is None:
        return f"{IP} not found (install iproute2)"
    probe = f"{RUN_PREFIX}probe"[:15]
    done = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True,
                          check=False)
    subprocess.run([IP, "netns", "del", probe], capture_output=True, check=False)
    if done.returncode != 0:
        return f"`ip netns add` is not usable here: {done.stderr.strip()}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Anything that uses the lab is a namespace test, marked or not.
    for item in items:
        if _LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.netns)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("netns") is None:
        return
    reason = netns_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        # CI runs as root: a skipped lab there would hide every integration test.
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _namespace_safety_net() -> Iterator[None]:
    """Delete any namespace of this run that a crashed fixture left behind."""
    yield
    if os.geteuid() == 0 and shutil.which(IP):
        left = delete_run_leftovers()
        if left:
            warnings.warn(f"deleted leftover lab namespaces: {', '.join(left)}", stacklevel=1)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    """A fresh lab; on teardown its processes are stopped and its namespaces deleted, also
    when the test failed. Async so that processes are stopped inside the test's loop."""
    async with Lab() as the_lab:
        yield the_lab


@pytest.fixture
def lan_pair(lab: Lab) -> tuple[Host, Host]:
    """("pc" 192.0.2.1, "phone" 192.0.2.2) joined by one veth pair."""
    return lab.lan_pair()


# ---- the NAT lab and coturn (tests/nat_lab.py) ----------------------------------------------

import secrets
from pathlib import Path

from tests.nat_lab import Coturn, NatLab, build_nat_lab, start_coturn


@pytest.fixture
def nat_lab(lab: Lab) -> NatLab:
    """pub, natA behind routerA, natB behind routerB (symmetric NATs), filters open; switch
    with `nat_lab.set_mode(...)`. Torn down with `lab`."""
    return build_nat_lab(lab)


@pytest.fixture
async def coturn(nat_lab: NatLab, tmp_path: Path) -> AsyncIterator[Coturn]:
    """Real coturn in `pub` with the shipped config plus lab lines, listening on UDP/TCP 3478
    and TLS 5349; stopped by PID at teardown (the lab kills leftovers)."""
    server = await start_coturn(nat_lab.pub, tmp_path / "coturn", secret=secrets.token_hex(16))
    try:
        yield server
    finally:
        await server.stop()


# ---- the LAN lab (tests/lan_lab.py) ------------------------------------------------------------

from tests.lan_lab import LanLab, build_lan_lab


@pytest.fixture
def lan_lab(lab: Lab) -> LanLab:
    """lan1 (agent) .1, lan2 (paired peer) .2, lan3 (stranger) .3 of 198.51.100.0/24 on one
    bridge, mDNS-ready (multicast route, usable IPv6 link-local). Torn down with `lab`."""
    return build_lan_lab(lab)
