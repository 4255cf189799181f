"""The NAT lab: two sites behind symmetric NATs, a public segment with the relay, real coturn.

Built on tests/lab.py (its Lab tracks every namespace, link and process and removes them on
failure). Topology, documentation ranges only (RFC 5737; never 192.0.2.0/24, the host's own):

    203.0.113.0/24 "public" bridge:  pub .1 (signaling + coturn)   routerA .2   routerB .3
                                      [routerL .4 with with_lan=True]
    natA 198.51.100.2/26   ── routerA 198.51.100.1/26    (site A, 198.51.100.0/26)
    natB 198.51.100.66/26  ── routerB 198.51.100.65/26   (site B, 198.51.100.64/26)
    [pc .129, phone .130 ── routerL .131 on a switch]    (the LAN pair, 198.51.100.128/26)

Each router masquerades what leaves on its public side with ``--random-fully``: every new
flow gets a random source port, so the mapping depends on the destination (RFC 4787
"address and port-dependent mapping", the "symmetric NAT" of RFC 3489) and STUN-learned ports
are useless to the other side: only a relay connects natA and natB.

Filter modes (FORWARD chain of both NAT routers, what leaves the private sides):
  open              everything passes;
  udp-only-to-turn  UDP only to and from pub's TURN port 3478, all other UDP dropped;
  no-udp            all forwarded UDP dropped (TURN over TCP/TLS only).

coturn runs in ``pub`` in the foreground under a tiny wrapper that turns its log lines into
JSON events, with the shipped deploy/coturn/turnserver.conf plus lab-only lines (listening
address, files in the test's temp dir, a test CA, ``allowed-peer-ip`` for the lab ranges).
"""

from __future__ import annotations

import datetime
import enum
import ipaddress
import os
import re
import signal
import sqlite3
import sys
import textwrap
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab import REPO_ROOT, Host, Lab, LabError
from tests.peer_process import PeerProcess

PUBLIC_SUBNET = "203.0.113.0/24"
SITE_A_SUBNET = "198.51.100.0/26"
SITE_B_SUBNET = "198.51.100.64/26"
LAN_SITE_SUBNET = "198.51.100.128/26"
TURN_PORT = 3478
TURNS_PORT = 5349

SHIPPED_CONF = REPO_ROOT / "deploy" / "coturn" / "turnserver.conf"
COTURN_SCHEMA = Path("/usr/share/coturn/schema.sql")  # from the Debian package coturn
SECRET_PLACEHOLDER = "REPLACE_ME_WITH_openssl_rand_hex_32"
# The only addresses the lab relay may reach: ranges the shipped config denies (documentation
# ranges are not routable on the Internet) and the lab re-allows; "allowed" beats "denied".
LAB_ALLOWED_PEERS = ("203.0.113.0-203.0.113.255", "198.51.100.0-198.51.100.255")
# Options of the shipped file that name places on a real server; the lab sets its own.
_LAB_REPLACED = frozenset({
    "listening-ip", "relay-ip", "external-ip", "static-auth-secret", "realm", "cert", "pkey",
    "log-file", "no-stdout-log", "simple-log", "syslog", "pidfile", "userdb", "max-bps",
})


class NatMode(enum.StrEnum):
    OPEN = "open"
    UDP_ONLY_TO_TURN = "udp-only-to-turn"
    NO_UDP = "no-udp"


@dataclass(frozen=True)
class NatSite:
    """One private network: a host behind its NAT router."""

    host: Host
    router: Host
    public_address: str  # the router's address on the public segment (the NAT's mapped IP)
    private_address: str  # the router's address on the private side (the host's gateway)
    wan_if: str
    lan_if: str


@dataclass(frozen=True)
class LanSite:
    """The LAN pair on one switch, behind a NAT router of its own (never filtered)."""

    pc: Host
    phone: Host
    router: Host
    public_address: str
    private_address: str


class NatLab:
    """The built topology; `set_mode` changes the routers' filters while everything runs."""

    def __init__(self, lab: Lab, pub: Host, a: NatSite, b: NatSite,
                 lan: LanSite | None) -> None:
        self.lab = lab
        self.pub = pub
        self.a = a
        self.b = b
        self.lan = lan
        self.mode = NatMode.OPEN

    def set_mode(self, mode: NatMode) -> None:
        """Replace the FORWARD rules of every NAT router (the LAN's router stays open)."""
        for site in (self.a, self.b):
            _iptables(site.router, "-F", "FORWARD")
            _iptables(site.router, "-Z", "FORWARD")
            if mode is NatMode.UDP_ONLY_TO_TURN:
                # Both directions of the TURN flow (replies are already de-NATed in
                # PREROUTING, so they match on their source); nothing else with UDP.
                _iptables(site.router, "-A", "FORWARD", "-p", "udp", "-d", self.pub.address,
                          "--dport", str(TURN_PORT), "-j", "ACCEPT")
                _iptables(site.router, "-A", "FORWARD", "-p", "udp", "-s", self.pub.address,
                          "--sport", str(TURN_PORT), "-j", "ACCEPT")
            if mode is not NatMode.OPEN:
                _iptables(site.router, "-A", "FORWARD", "-p", "udp", "-j", "DROP")
        self.mode = mode

    @staticmethod
    def dropped_udp(site: NatSite) -> int:
        """Packets the router's UDP DROP rule has matched since the last `set_mode`."""
        out = _iptables(site.router, "-L", "FORWARD", "-v", "-n", "-x")
        # "    pkts  bytes target prot opt in out source destination"
        total = 0
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[2] == "DROP" and fields[3] in ("udp", "17"):
                total += int(fields[0])
        return total


def _iptables(host: Host, *args: str) -> str:
    done = host.run(["iptables", "-w", "5", *args])
    if done.returncode != 0:
        raise LabError(f"iptables {' '.join(args)} in {host.role}: {done.stderr.strip()}")
    return done.stdout


def _sysctl(host: Host, key: str, value: str) -> None:
    done = host.run(["sysctl", "-q", "-w", f"{key}={value}"])
    if done.returncode != 0:
        raise LabError(f"sysctl {key}={value} in {host.role}: {done.stderr.strip()}")


def _route_via(host: Host, gateway: str) -> None:
    # Lab._configure gave the host an on-link default route; behind a router it needs a real
    # gateway (nothing would answer ARP for public addresses on the private link).
    done = host.run(["ip", "route", "replace", "default", "via", gateway])
    if done.returncode != 0:
        raise LabError(f"default route via {gateway} in {host.role}: {done.stderr.strip()}")


def _nat_router(router: Host, wan_if: str) -> None:
    _sysctl(router, "net.ipv4.ip_forward", "1")
    _iptables(router, "-t", "nat", "-A", "POSTROUTING", "-o", wan_if, "-j", "MASQUERADE",
              "--random-fully")


def _site(lab: Lab, role: str, router: Host, wan_if: str, subnet: str) -> NatSite:
    net = ipaddress.ip_network(subnet)
    gw, addr = (str(a) for a in list(net.hosts())[:2])
    host = lab.host(role)
    _, lan_if = lab.link(host, router, f"{addr}/{net.prefixlen}", f"{gw}/{net.prefixlen}")
    _route_via(host, gw)
    _nat_router(router, wan_if)
    return NatSite(host, router, router.addresses[0], gw, wan_if, lan_if)


def build_nat_lab(lab: Lab, mode: NatMode = NatMode.OPEN, with_lan: bool = False) -> NatLab:
    """Build the topology of the module docstring inside `lab` (torn down with it)."""
    members: list[Host | str] = ["pub", "routerA", "routerB"]
    if with_lan:
        members.append("routerL")
    pub, router_a, router_b, *rest = lab.bridge(*members, subnet=PUBLIC_SUBNET)
    # Each router's first interface is its public side (lab.bridge made it).
    site_a = _site(lab, "natA", router_a, router_a.interfaces[0], SITE_A_SUBNET)
    site_b = _site(lab, "natB", router_b, router_b.interfaces[0], SITE_B_SUBNET)
    lan: LanSite | None = None
    if with_lan:
        (router_l,) = rest
        pc, phone = lab.host("pc"), lab.host("phone")
        # The switch numbers members in order: pc .129, phone .130, routerL .131.
        lab.bridge(pc, phone, router_l, subnet=LAN_SITE_SUBNET)
        gw = router_l.addresses[1]
        for h in (pc, phone):
            _route_via(h, gw)
        _nat_router(router_l, router_l.interfaces[0])
        lan = LanSite(pc, phone, router_l, router_l.addresses[0], gw)
    nat = NatLab(lab, pub, site_a, site_b, lan)
    nat.set_mode(mode)
    return nat


# -- TLS material for turns: ---------------------------------------------------------------------


@dataclass(frozen=True)
class TestPki:
    ca_file: Path  # what clients trust (SSL_CERT_FILE for aiortc, cafile for ssl contexts)
    cert_file: Path  # server certificate, PEM
    key_file: Path  # its private key, PEM


def make_test_pki(directory: Path, server_ip: str) -> TestPki:
    """A throw-away CA and a server certificate for `server_ip` (an IP SAN: the lab has no
    DNS, and Python's ssl checks IP SANs when server_hostname is an address)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peerbeam lab test CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_ip)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    pki = TestPki(directory / "ca.pem", directory / "turn-cert.pem", directory / "turn-key.pem")
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # The chain a real deployment would serve (fullchain.pem): leaf first, then the CA.
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                              + ca.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    pki.key_file.chmod(0o600)
    return pki


# -- coturn ---------------------------------------------------------------------------------------


def lab_turnserver_conf(shipped: str, settings: Mapping[str, str | None],
                        allowed_peers: Iterable[str] = LAB_ALLOWED_PEERS,
                        extra_lines: Iterable[str] = ()) -> str:
    """The shipped config with its site-specific options replaced by `settings` (None: a
    flag), the lab's allowed-peer-ip lines and `extra_lines` appended. Everything else — the
    deny list, quotas, TLS versions and ciphers, REST auth — is kept verbatim: the lab tests
    the file we ship."""
    if SECRET_PLACEHOLDER not in shipped:
        raise LabError("the shipped turnserver.conf lost its static-auth-secret placeholder")
    kept = []
    for line in shipped.splitlines():
        key = line.strip().split("=", 1)[0]
        if key and not key.startswith("#") and key in _LAB_REPLACED:
            continue
        kept.append(line)
    kept.append("# ---- lab ----")
    kept += [k if v is None else f"{k}={v}" for k, v in settings.items()]
    kept += [f"allowed-peer-ip={r}" for r in allowed_peers]
    kept += extra_lines
    return "\n".join(kept) + "\n"


# Runs coturn as a child, prints each log line as {"event":"log","line":...} plus typed events
# for listeners and ERROR or bad-configuration lines, and exits with coturn's code (128 + N after signal N). It ignores SIGTERM so
# that it outlives coturn and relays its last lines; a SIGTERM to the process group (or to
# coturn's PID) stops coturn, which ends the wrapper.
_WRAPPER = textwrap.dedent(r"""
    import json, re, signal, subprocess, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1,
                            preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    def emit(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)
    emit("started", pid=proc.pid)
    listener = re.compile(r"IPv[46]\. (\S+) listener opened on\s*:\s*(\S+):(\d+)")
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        emit("log", line=line)
        m = listener.search(line)
        if m:
            emit("listening", kind=m.group(1), address=m.group(2), port=int(m.group(3)))
        if "Bad configuration format" in line or "ERROR" in line:
            emit("error", line=line)
    rc = proc.wait()
    emit("exited", returncode=rc)
    sys.exit(rc if rc >= 0 else 128 - rc)
""")


@dataclass
class Coturn:
    """A running coturn in a lab namespace."""

    host: Host
    process: PeerProcess  # the wrapper; coturn itself is its child
    pid: int  # coturn's own PID (from its pid file)
    address: str
    secret: str
    realm: str
    pki: TestPki
    workdir: Path
    config_file: Path

    @property
    def port(self) -> int:
        return TURN_PORT

    @property
    def tls_port(self) -> int:
        return TURNS_PORT

    def urls(self) -> dict[str, str]:
        """TURN URLs by transport (RFC 7065), for ICE server lists."""
        return {"udp": f"turn:{self.address}:{TURN_PORT}?transport=udp",
                "tcp": f"turn:{self.address}:{TURN_PORT}?transport=tcp",
                "tls": f"turns:{self.address}:{TURNS_PORT}?transport=tcp"}

    def log_lines(self) -> list[str]:
        return [str(e["line"]) for e in self.process.events if e.get("event") == "log"]

    async def stop(self, grace: float = 10) -> int | None:
        """SIGTERM coturn by its PID, wait for it (and the wrapper) to exit; the lab's group
        kill remains the fallback. Returns the wrapper's exit code (143: coturn took the
        SIGTERM; coturn 4.6.1 dies of it without a handler)."""
        if self.process.returncode is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await self.process.wait(grace)
            except TimeoutError:
                pass
        return await self.process.stop()


async def start_coturn(host: Host, workdir: Path, secret: str, realm: str = "lab.peerbeam.test",
                       max_bps: int | None = None, extra_lines: Iterable[str] = (),
                       timeout: float = 20) -> Coturn:
    """Start coturn in `host` (foreground, all files under `workdir`) and wait until its UDP,
    TCP and TLS listeners are open. Fails on any configuration line coturn rejected.
    `max_bps` overrides the shipped per-allocation limit (benchmarks); `extra_lines` are
    appended to the config (e.g. a second static-auth-secret)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_test_pki(workdir / "pki", host.address)
    settings: dict[str, str | None] = {
        "listening-ip": host.address,
        "relay-ip": host.address,
        "static-auth-secret": secret,
        "realm": realm,
        "cert": str(pki.cert_file),
        "pkey": str(pki.key_file),
        "log-file": "stdout",
        "pidfile": str(workdir / "turnserver.pid"),
        "userdb": str(workdir / "turndb"),
        # Listener lines (readiness) and per-session lines (allocations, peers) in the log.
        "verbose": None,
    }
    shipped = SHIPPED_CONF.read_text()
    max_bps_line = re.search(r"^max-bps=(\d+)$", shipped, re.MULTILINE)
    if max_bps is not None:
        settings["max-bps"] = str(max_bps)
    elif max_bps_line:
        settings["max-bps"] = max_bps_line.group(1)
    _create_userdb(workdir / "turndb")
    config_file = workdir / "turnserver.conf"
    config_file.write_text(lab_turnserver_conf(shipped, settings, extra_lines=extra_lines))
    config_file.chmod(0o600)
    turnserver = _which_turnserver()
    process = await host.spawn([sys.executable, "-c", _WRAPPER, turnserver, "-c",
                                str(config_file)], cwd=workdir)
    started = await process.expect("started", timeout=timeout)
    # With a certificate configured, coturn sniffs TLS on every TCP listener, so both TCP
    # ports report as "TLS/TCP"; with no-dtls the TLS port has no UDP listener.
    wanted = {("UDP", TURN_PORT), ("TLS/TCP", TURN_PORT), ("TLS/TCP", TURNS_PORT)}
    while wanted:
        ev = await process.expect("listening", timeout=timeout)
        if ev["address"] == host.address:
            wanted.discard((ev["kind"], ev["port"]))
    errors = [e["line"] for e in process.events if e.get("event") == "error"]
    if errors:
        await process.stop()
        raise LabError("coturn rejected configuration lines:\n" + "\n".join(errors))
    pid_text = (workdir / "turnserver.pid").read_text().strip()
    if int(pid_text) != started["pid"]:
        await process.stop()
        raise LabError(f"coturn pid file says {pid_text}, the wrapper started {started['pid']}")
    return Coturn(host, process, int(pid_text), host.address, secret, realm, pki, workdir,
                  config_file)


def _create_userdb(path: Path) -> None:
    # coturn 4.6.1 creates a missing SQLite schema lazily, from its auth threads, after its
    # listeners are open: on a fresh file the first authentications race that creation, get
    # "database is locked", and are answered 401 with valid credentials. Debian's postinst
    # creates /var/lib/turn/turndb from this schema before the first start; so do we.
    if not COTURN_SCHEMA.exists():
        raise LabError(f"{COTURN_SCHEMA} not found: install the Debian package coturn")
    with closing(sqlite3.connect(path)) as db:
        db.executescript(COTURN_SCHEMA.read_text())
        db.commit()


def _which_turnserver() -> str:
    for candidate in ("/usr/bin/turnserver", "/usr/local/bin/turnserver"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise LabError("turnserver not found: install the Debian package coturn")
