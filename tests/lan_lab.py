"""The LAN lab (issue 5): three machines on one switch, nothing else.

    lan1 198.51.100.1 (the agent)   lan2 198.51.100.2 (a paired peer)   lan3 198.51.100.3 (a stranger)
                 \\                          |                             /
                  +----------------- switch: br0 (own namespace) --------+

Built on tests/lab.py (Lab.bridge: both ends of every veth born inside lab namespaces, bridge
netfilter off, multicast snooping off so that mDNS floods like on a home switch). Each host has
`lo`, one veth, and an on-link default route through it: no route leads anywhere but the switch.
198.51.100.0/24, not 192.0.2.0/24 (the host's own eth0 is numbered there).

mDNS needs two more things than Lab.bridge gives, checked here before any test runs:

- IPv4 multicast (224.0.0.251) must leave through the lab interface. The on-link default route
  covers 224.0.0.0/4; `ip route get` proves it.
- IPv6 (ff02::fb) needs the link-local address every veth gets, and it must not be *tentative*:
  duplicate address detection would hold it back for a second or two, during which a responder
  started early could not use it. DAD is switched off in the hosts before their veths exist
  (new interfaces copy ``net.ipv6.conf.default``), so the address is usable at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.lab import Host, Lab, LabError

MDNS_V4 = "224.0.0.251"


@dataclass(frozen=True)
class LanLab:
    lan1: Host  # the agent
    lan2: Host  # the paired peer
    lan3: Host  # the stranger

    @property
    def hosts(self) -> tuple[Host, Host, Host]:
        return (self.lan1, self.lan2, self.lan3)


def link_local(host: Host) -> str:
    """The IPv6 link-local address of the host's lab interface (fails if absent or tentative)."""
    (ifname,) = host.interfaces
    out = host.run(["ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link"]).stdout
    m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64 .*", out)
    if m is None or "tentative" in m.group(0):
        raise LabError(f"{host.role}: no usable IPv6 link-local address on {ifname}: {out!r}")
    return m.group(1)


def _sysctl(host: Host, key: str, value: str) -> None:
    done = host.run(["sysctl", "-q", "-w", f"{key}={value}"])
    if done.returncode != 0:
        raise LabError(f"sysctl {key}={value} in {host.role}: {done.stderr.strip()}")


def build_lan_lab(lab: Lab) -> LanLab:
    """Build the topology of the module docstring inside `lab` (torn down with it)."""
    hosts = [lab.host(role) for role in ("lan1", "lan2", "lan3")]
    for host in hosts:
        for scope in ("all", "default"):
            _sysctl(host, f"net.ipv6.conf.{scope}.accept_dad", "0")
    lab.bridge(*hosts)
    for host in hosts:
        (ifname,) = host.interfaces
        route = host.run(["ip", "route", "get", MDNS_V4]).stdout
        if f"dev {ifname}" not in route:
            raise LabError(f"{host.role}: {MDNS_V4} is not routed out of {ifname}: {route!r}")
        link_local(host)
    return LanLab(*hosts)
