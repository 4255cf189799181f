"""Network-namespace lab for integration tests.

WebRTC (aiortc, Chromium) and mDNS run only inside namespaces made here, never in the host
namespace: aioice ignores 127.0.0.1 and Chromium ignores loopback interfaces, and this machine's
rules forbid real traffic anywhere but loopback and namespaces a test made itself.

Isolation is by construction: every veth is created with *both* ends already inside lab
namespaces (``ip link add ... netns A type veth peer ... netns B``), so no lab link ever exists
in the host namespace and nothing routes between the lab and the host network. Addresses come
from the documentation ranges (RFC 5737): 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24.

The machine's own uplink is numbered in 192.0.2.0/24 as well (eth0 192.0.2.2, gateway
192.0.2.1): lab addresses mean something only inside lab namespaces, and nothing in the host
namespace may ever be pointed at them.

Teardown is total and idempotent: processes spawned through a host are killed by process group,
anything else left in a lab namespace is killed by PID, then links and namespaces are deleted —
also when setup failed halfway or the test body raised.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.peer_process import PeerProcess

IP = shutil.which("ip") or "/usr/sbin/ip"
REPO_ROOT = Path(__file__).resolve().parent.parent

# One prefix per process: the session safety net in conftest deletes what matches it.
# "pb" + pid (≤ 7 digits) + "-" + counter stays within IFNAMSIZ-1 = 15 characters.
RUN_PREFIX = f"pb{os.getpid()}-"
_counter = itertools.count(1)

LAN_SUBNET = ipaddress.ip_network("198.51.100.0/24")  # not 192.0.2.0/24: the host's own eth0 is numbered there
_STREAM_LIMIT = 4 * 1024 * 1024  # one JSON event per line; thumbnails may make lines long


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


def ip_cmd(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` synchronously; raise LabError with stderr when check and it fails."""
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def list_namespaces() -> list[str]:
    out = ip_cmd("netns", "list").stdout
    # Lines look like "name" or "name (id: 3)".
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_namespace(name: str) -> None:
    """Kill whatever still runs in namespace `name` (by PID), then delete it. Never raises."""
    pids = ip_cmd("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    ip_cmd("netns", "del", name, check=False)


def delete_run_leftovers(prefix: str = RUN_PREFIX) -> list[str]:
    """Delete every namespace whose name starts with this run's prefix; return their names."""
    left = [name for name in list_namespaces() if name.startswith(prefix)]
    for name in left:
        delete_namespace(name)
    return left


class Host:
    """One network namespace: a machine of the lab (pc, phone, router, bridge...)."""

    def __init__(self, lab: Lab, name: str, role: str) -> None:
        self.lab = lab
        self.name = name
        self.role = role
        self.addresses: list[str] = []  # without prefix length, in order of assignment
        self.interfaces: list[str] = []
        self.has_default_route = False

    def __repr__(self) -> str:
        return f"Host({self.role!r}, ns={self.name!r}, addresses={self.addresses!r})"

    @property
    def address(self) -> str:
        if not self.addresses:
            raise LabError(f"host {self.role} ({self.name}) has no address yet")
        return self.addresses[0]

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """The argv that runs `cmd` inside this namespace (``ip netns exec`` execs in place,
        so the PID of the spawned process is the PID of `cmd`)."""
        return [IP, "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], timeout: float = 30, check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and wait for it."""
        return subprocess.run(self.argv(cmd), capture_output=True, text=True,
                              timeout=timeout, check=check, input=input)

    async def spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: str | os.PathLike[str] | None = None) -> PeerProcess:
        """Start `cmd` in this namespace in its own session. `env` is added to os.environ."""
        full_env = {**os.environ, **(env or {})}
        proc = await asyncio.create_subprocess_exec(
            *self.argv(cmd), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=full_env, cwd=cwd, start_new_session=True,
            limit=_STREAM_LIMIT)
        peer = PeerProcess(proc, label=f"{self.role}:{' '.join(map(str, cmd))[:80]}")
        self.lab._register(peer)
        return peer

    async def peerbeam(self, args: Sequence[str], home: str | os.PathLike[str],
                       env: Mapping[str, str] | None = None) -> PeerProcess:
        """Run the project's CLI (``python -m peer_agent ARGS``) with its own config dir."""
        extra = {"PEERBEAM_HOME": os.fspath(home), "PYTHONUNBUFFERED": "1", **(env or {})}
        return await self.spawn([sys.executable, "-m", "peer_agent", *args], env=extra,
                                cwd=REPO_ROOT)


class Lab:
    """Creates hosts and links; a sync context manager whose exit removes everything."""

    def __init__(self) -> None:
        self.hosts: list[Host] = []
        self._namespaces: list[str] = []
        self._links: list[tuple[str, str]] = []  # (namespace, interface)
        self._processes: list[PeerProcess] = []
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # -- building -------------------------------------------------------------------------

    def _new_name(self) -> str:
        name = f"{RUN_PREFIX}{next(_counter)}"
        assert len(name) <= 15, name
        return name

    def host(self, role: str) -> Host:
        """A fresh namespace with only `lo` (up) in it."""
        if self._closed:
            raise LabError("lab is closed")
        name = self._new_name()
        # Recorded before creation: if `add` half-succeeds, close() still tries to delete it.
        self._namespaces.append(name)
        ip_cmd("netns", "add", name)
        ip_cmd("-n", name, "link", "set", "lo", "up")
        host = Host(self, name, role)
        self.hosts.append(host)
        return host

    def _veth(self, a: Host, b: Host) -> tuple[str, str]:
        n = next(_counter)
        a_if, b_if = f"veth{n}a", f"veth{n}b"
        self._links += [(a.name, a_if), (b.name, b_if)]
        # Both ends are born inside the namespaces: the host namespace never sees them.
        ip_cmd("link", "add", a_if, "netns", a.name, "type", "veth",
               "peer", "name", b_if, "netns", b.name)
        a.interfaces.append(a_if)
        b.interfaces.append(b_if)
        return a_if, b_if

    def _configure(self, host: Host, ifname: str, cidr: str | None) -> None:
        if cidr is not None:
            iface = ipaddress.ip_interface(cidr)
            ip_cmd("-n", host.name, "addr", "add", str(iface), "dev", ifname)
            host.addresses.append(str(iface.ip))
        ip_cmd("-n", host.name, "link", "set", ifname, "up")
        if cidr is not None and not host.has_default_route:
            # An on-link default route: aioice, Chromium and mDNS responders want one to pick
            # the interface; packets to other addresses just die at the peer namespace.
            ip_cmd("-n", host.name, "route", "add", "default", "dev", ifname)
            host.has_default_route = True

    def link(self, a: Host, b: Host, a_cidr: str | None, b_cidr: str | None) -> tuple[str, str]:
        """Join two hosts with a veth pair; return the interface names (a side, b side)."""
        a_if, b_if = self._veth(a, b)
        self._configure(a, a_if, a_cidr)
        self._configure(b, b_if, b_cidr)
        return a_if, b_if

    def lan_pair(self, subnet: str = str(LAN_SUBNET)) -> tuple[Host, Host]:
        """"pc" .1 and "phone" .2 of `subnet` (default 198.51.100.1/24 and .2/24), joined
        by one veth pair."""
        net = ipaddress.ip_network(subnet)
        pc_addr, phone_addr = itertools.islice(net.hosts(), 2)
        pc, phone = self.host("pc"), self.host("phone")
        self.link(pc, phone, f"{pc_addr}/{net.prefixlen}", f"{phone_addr}/{net.prefixlen}")
        return pc, phone

    def bridge(self, *hosts: Host | str, subnet: str = str(LAN_SUBNET)) -> list[Host]:
        """A switch: a bridge in its own namespace, one veth from each host.

        Strings create hosts with that role. Hosts get .1, .2, ... of `subnet` in order.
        """
        net = ipaddress.ip_network(subnet)
        if len(hosts) > net.num_addresses - 2:
            raise LabError(f"{len(hosts)} hosts do not fit in {net}")
        members = [h if isinstance(h, Host) else self.host(h) for h in hosts]
        switch = self.host("switch")
        ip_cmd("-n", switch.name, "link", "add", "br0", "type", "bridge",
               "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0",
               "mcast_snooping", "0")
        self._links.append((switch.name, "br0"))
        self._disable_bridge_netfilter(switch)
        ip_cmd("-n", switch.name, "link", "set", "br0", "up")
        for addr, member in zip(net.hosts(), members):
            member_if, port = self._veth(member, switch)
            ip_cmd("-n", switch.name, "link", "set", port, "master", "br0")
            ip_cmd("-n", switch.name, "link", "set", port, "up")
            self._configure(member, member_if, f"{addr}/{net.prefixlen}")
        return members

    @staticmethod
    def shape(host: Host, rate: str) -> None:
        """Limit what `host` sends on each of its links to `rate` (tc token bucket, e.g.
        "40mbit"): a transfer then takes long enough to be interrupted mid-way, for real."""
        for ifname in host.interfaces:
            ip_cmd("-n", host.name, "link", "show", ifname)  # fail early on a typo
            done = host.run(["tc", "qdisc", "replace", "dev", ifname, "root", "tbf", "rate", rate,
                             "burst", "32kb", "latency", "400ms"])
            if done.returncode != 0:
                raise LabError(f"tc on {host.name}/{ifname}: {done.stderr.strip()}")

    @staticmethod
    def _disable_bridge_netfilter(switch: Host) -> None:
        # With br_netfilter loaded, bridged frames traverse iptables and the per-bridge
        # nf_call_* options do not override the sysctl (it is OR-ed in); the sysctl is per
        # namespace and defaults to 1. Without br_netfilter the keys do not exist: fine.
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables",
                    "bridge-nf-call-arptables"):
            path = Path("/proc/sys/net/bridge") / key
            done = switch.run(["sh", "-c", f"[ ! -e {path} ] || echo 0 > {path}"])
            if done.returncode != 0:
                raise LabError(f"cannot set {key}=0 in {switch.name}: {done.stderr.strip()}")

    # -- processes and teardown -----------------------------------------------------------

    def _register(self, proc: PeerProcess) -> None:
        self._processes.append(proc)

    async def stop_processes(self) -> None:
        """Gracefully stop every process spawned in this lab (SIGTERM, then SIGKILL)."""
        await asyncio.gather(*(p.stop() for p in self._processes))

    async def aclose(self) -> None:
        """Like close(), but stops processes gracefully and releases their asyncio pipes
        while the loop still runs (no "Event loop is closed" noise at garbage collection)."""
        try:
            await asyncio.wait_for(self.stop_processes(), 15)
        finally:
            self.close()

    def close(self) -> None:
        """Kill processes, delete links and namespaces. Idempotent; never raises."""
        self._closed = True
        for proc in self._processes:
            proc.kill_now()
        for ns, ifname in reversed(self._links):
            ip_cmd("-n", ns, "link", "del", ifname, check=False)
        self._links.clear()
        existing = set(list_namespaces())
        for name in reversed(self._namespaces):
            if name in existing:
                delete_namespace(name)
        self._namespaces.clear()

    @property
    def namespaces(self) -> list[str]:
        return list(self._namespaces)


def addresses_in(ip_addr_output: str, networks: Iterable[str]) -> list[str]:
    """Addresses configured in `ip -o addr` output that fall in any of `networks`."""
    nets = [ipaddress.ip_network(n) for n in networks]
    found = []
    tokens = ip_addr_output.split()
    for family, value in itertools.pairwise(tokens):
        if family not in ("inet", "inet6"):
            continue
        addr = ipaddress.ip_interface(value).ip
        if any(addr.version == n.version and addr in n for n in nets):
            found.append(str(addr))
    return found
