"""Network probes for the NAT lab, run INSIDE a lab namespace (never in the host's).

One JSON event per line on stdout (tests/peer_process.py reads them). Subcommands:

  echo --bind IP --port N          UDP echo: answers every datagram with JSON
                                   {"data": ..., "from": [ip, port]} and emits "datagram";
                                   {"op": "send", "to": [IP, PORT], "data": S} on stdin sends
                                   from the same socket.
  udp  --to IP:PORT ... --data S   from ONE socket, sends S to each destination (retrying) and
                                   emits "reply" (with the source address the echo saw) or
                                   "no-reply" per destination: NAT mappings and UDP filters.
  stun --server IP --port N        a STUN Binding over UDP: "mapped" or "no-reply".
  tls  --server IP --port N --cafile F [--tls-min V] [--tls-max V] [--ciphers C]
                                   one TLS handshake: "tls" (version, cipher) or "tls-failed".
  turn --server IP --port N --transport udp|tcp|tls --username U --password P [--cafile F]
                                   a real aioice TURN client (pinned aioice 0.13.0): emits
                                   "allocated" or "allocate-failed" (with the STUN error code),
                                   then obeys JSON commands on stdin, one per line:
        {"op": "permit", "peer": IP}                     CreatePermission -> "permit"
        {"op": "bind", "peer": [IP, PORT]}               ChannelBind (raw) -> "bind"
        {"op": "send", "peer": [IP, PORT], "data": S}    channel data -> "sent"/"send-failed"
        {"op": "indicate", "peer": [IP, PORT], "data": S}  Send indication -> "indicated"
        {"op": "close"}                                  Refresh lifetime 0, exit
     and emits "received" for every datagram relayed back to it.

The TURN client uses aioice's protocol classes (TurnClientUdpProtocol / TurnClientTcpProtocol,
what create_turn_endpoint wraps) directly, because the tests need the raw requests that the
TurnTransport wrapper hides: CreatePermission and ChannelBind with their error codes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import sys
import time
from typing import Any

from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

TurnProtocol = TurnClientUdpProtocol | TurnClientTcpProtocol


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def stun_error(exc: BaseException) -> dict[str, Any]:
    """The STUN error code and reason of a failed transaction, or why there is none."""
    if isinstance(exc, stun.TransactionFailed):
        code, reason = exc.response.attributes.get("ERROR-CODE", (None, ""))
        return {"code": code, "reason": reason}
    if isinstance(exc, stun.TransactionTimeout):
        return {"code": None, "reason": "timeout"}
    return {"code": None, "reason": f"{type(exc).__name__}: {exc}"}


# -- plain UDP --------------------------------------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode("utf-8", "replace")
        emit("datagram", data=text, **{"from": list(addr)})
        if not text.startswith("{"):  # never answer an answer: two echoes would ping-pong
            self.transport.sendto(json.dumps({"data": text, "from": list(addr)}).encode(), addr)


async def run_echo(bind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(bind, port))
    emit("listening", address=transport.get_extra_info("sockname")[0],
         port=transport.get_extra_info("sockname")[1])
    reader = await stdin_reader()
    # {"op": "send", "to": [IP, PORT], "data": S}: send from the echo's own socket (to open a
    # NAT mapping, or to test one that another host learned).
    while line := await reader.readline():
        cmd = json.loads(line)
        transport.sendto(cmd["data"].encode(), (cmd["to"][0], int(cmd["to"][1])))
        emit("sent", to=cmd["to"])
    transport.close()


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def run_udp(destinations: list[tuple[str, int]], data: str, wait: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    emit("bound", port=sock.getsockname()[1])
    for dest in destinations:
        # A few tries: the first datagram of a flow may race ARP on a fresh link.
        deadline = time.monotonic() + wait
        reply = None
        while reply is None and time.monotonic() < deadline:
            sock.sendto(data.encode(), dest)
            sock.settimeout(min(0.3, max(0.01, deadline - time.monotonic())))
            try:
                raw, src = sock.recvfrom(65535)
            except TimeoutError:
                continue
            if src == dest:
                reply = json.loads(raw)
        if reply is None:
            emit("no-reply", to=list(dest))
        else:
            emit("reply", to=list(dest), data=reply["data"], seen=reply["from"])


def run_stun(server: str, port: int, wait: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        sock.sendto(bytes(request), (server, port))
        sock.settimeout(min(0.3, max(0.01, deadline - time.monotonic())))
        try:
            raw, _ = sock.recvfrom(65535)
        except TimeoutError:
            continue
        response = stun.parse_message(raw)
        if response.transaction_id == request.transaction_id:
            emit("mapped", address=list(response.attributes["XOR-MAPPED-ADDRESS"]),
                 local_port=sock.getsockname()[1])
            return
    emit("no-reply", to=[server, port])


# -- TLS --------------------------------------------------------------------------------------


def run_tls(server: str, port: int, cafile: str, tls_min: str | None, tls_max: str | None,
            ciphers: str | None, timeout: float) -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    if tls_min is not None:
        ctx.minimum_version = ssl.TLSVersion[tls_min]
    if tls_max is not None:
        version = ssl.TLSVersion[tls_max]  # TLSv1 and TLSv1_1 are deprecated names: on purpose
        # Old versions are off in OpenSSL's default security level; allow them on OUR side so
        # a refusal can only come from the server.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = min(version, ssl.TLSVersion.TLSv1)
        ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    try:
        with (socket.create_connection((server, port), timeout=timeout) as raw,
              ctx.wrap_socket(raw, server_hostname=server) as tls):
            cipher = tls.cipher()
            emit("tls", version=tls.version(), cipher=cipher[0] if cipher else None)
    except (ssl.SSLError, OSError) as exc:
        emit("tls-failed", error=f"{type(exc).__name__}: {exc}")


# -- TURN -------------------------------------------------------------------------------------


class Receiver(asyncio.DatagramProtocol):
    """Where aioice delivers what the relay forwards to us."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        emit("received", data=data.decode("utf-8", "replace"), peer=list(addr))

    def error_received(self, exc: Exception) -> None:
        emit("receiver-error", error=str(exc))


async def open_turn(server: tuple[str, int], transport: str, username: str, password: str,
                    cafile: str | None) -> TurnProtocol:
    loop = asyncio.get_running_loop()

    def udp_client() -> TurnClientUdpProtocol:
        return TurnClientUdpProtocol(server, username, password, 600, 500)

    def tcp_client() -> TurnClientTcpProtocol:
        return TurnClientTcpProtocol(server, username, password, 600, 500)

    if transport == "udp":
        _, udp = await loop.create_datagram_endpoint(udp_client, remote_addr=server)
        return udp
    ctx = ssl.create_default_context(cafile=cafile) if transport == "tls" else None
    _, tcp = await asyncio.wait_for(loop.create_connection(
        tcp_client, host=server[0], port=server[1], ssl=ctx), 10)
    return tcp


async def obey(proto: TurnProtocol) -> None:
    reader = await stdin_reader()
    while line := await reader.readline():
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "permit":
                request = stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST)
                request.attributes["XOR-PEER-ADDRESS"] = (cmd["peer"], 0)
                await proto.request_with_retry(request)
                emit("permit", peer=cmd["peer"], code=None, reason="")
            elif op == "bind":
                peer = (cmd["peer"][0], int(cmd["peer"][1]))
                await proto.channel_bind(int(cmd.get("channel", 0x4FFF)), peer)
                emit("bind", peer=list(peer), code=None, reason="")
            elif op == "send":
                peer = (cmd["peer"][0], int(cmd["peer"][1]))
                await proto.send_data(cmd["data"].encode(), peer)
                emit("sent", peer=list(peer))
            elif op == "indicate":
                peer = (cmd["peer"][0], int(cmd["peer"][1]))
                message = stun.Message(stun.Method.SEND, stun.Class.INDICATION)
                message.attributes["XOR-PEER-ADDRESS"] = peer
                message.attributes["DATA"] = cmd["data"].encode()
                proto.send_stun(message, proto.server)
                emit("indicated", peer=list(peer))
            elif op == "close":
                break
            else:
                emit("bad-command", op=op)
        except stun.TransactionError as exc:
            failed = {"permit": "permit", "bind": "bind", "send": "send-failed"}[op]
            peer_field = cmd["peer"] if op == "permit" else list(cmd["peer"])
            emit(failed, peer=peer_field, **stun_error(exc))
    await proto.delete()
    emit("closed")


async def run_turn(args: argparse.Namespace) -> int:
    server = (args.server, args.port)
    try:
        proto = await open_turn(server, args.transport, args.username, args.password,
                                args.cafile)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        emit("allocate-failed", stage="connect", **stun_error(exc))
        return 2
    proto.receiver = Receiver()
    try:
        relayed = await proto.connect()
    except (stun.TransactionError, ConnectionError) as exc:
        # aioice sends the Allocate once without credentials (401 with REALM and NONCE is the
        # expected challenge, RFC 8489 §9.2) and retries once with them: an integrity key means
        # the error below answered the authenticated attempt.
        emit("allocate-failed", stage="allocate", authenticated=proto.integrity_key is not None,
             **stun_error(exc))
        return 3
    emit("allocated", relayed=list(relayed), mapped=list(proto.mapped_address or ()),
         realm=proto.realm)
    await obey(proto)
    return 0


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("echo")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=0)
    p = sub.add_parser("udp")
    p.add_argument("--to", type=address, action="append", required=True)
    p.add_argument("--data", default="probe")
    p.add_argument("--wait", type=float, default=2.0)
    p = sub.add_parser("stun")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--wait", type=float, default=2.0)
    p = sub.add_parser("tls")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--tls-min", choices=[v.name for v in ssl.TLSVersion])
    p.add_argument("--tls-max", choices=[v.name for v in ssl.TLSVersion])
    p.add_argument("--ciphers")
    p.add_argument("--timeout", type=float, default=5.0)
    p = sub.add_parser("turn")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--cafile")
    args = parser.parse_args()

    if args.cmd == "echo":
        asyncio.run(run_echo(args.bind, args.port))
    elif args.cmd == "udp":
        run_udp(args.to, args.data, args.wait)
    elif args.cmd == "stun":
        run_stun(args.server, args.port, args.wait)
    elif args.cmd == "tls":
        run_tls(args.server, args.port, args.cafile, args.tls_min, args.tls_max,
                args.ciphers, args.timeout)
    else:
        return asyncio.run(run_turn(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
