"""`peerbeam`: the command line. Sentences for people, or `--json` for one event per line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crypto.errors import LinkError
from crypto.link import parse_link
from signaling.config import ServerConfig
from signaling.schema import export_json_schema

from . import control
from .config import NodeConfig, default_home, default_name, remember_name
from .errors import PeerbeamError, UnknownDevice
from .lan_signal import parse_address
from .pairings import PairingBook
from .report import Reporter, make_reporter

if TYPE_CHECKING:
    from .node import Node

logger = logging.getLogger(__name__)


def _node_class() -> type[Node]:
    """The node (aiortc, aiohttp, zeroconf: ~0.4 s of imports) is loaded only by the commands
    that run one; `send`, `cancel`, `devices`... talk to a running one and start at once."""
    from .node import Node

    return Node


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run on uvloop where available (≈1.7× the data-channel throughput, DESIGN); SIGTERM and
    Ctrl-C close everything in order instead of dying mid-write."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if not os.environ.get("PEERBEAM_NO_UVLOOP"):  # the benchmarks compare both loops
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await main()
        except asyncio.CancelledError:
            return 0

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(guarded())


def _fail(reporter: Reporter, exc: PeerbeamError) -> int:
    reporter.emit("error", code=str(exc.code), message=exc.message)
    return 1


def _lan_address() -> str | None:
    """The source address the kernel would use on the default route. A UDP connect sends no
    packet; it only asks for the route. Unicast targets (RFC 5737 TEST-NETs) are used because
    a connect to a subnet's broadcast address fails without SO_BROADCAST."""
    for probe in ("203.0.113.1", "198.51.100.1", "192.0.2.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((probe, 9))
            except OSError:
                continue
            address: str = s.getsockname()[0]
            if not address.startswith("127."):
                return address
    return None


class Ctx:
    def __init__(self, home: Path, json_mode: bool, verbose: bool) -> None:
        self.home = home
        self.json = json_mode
        self.reporter = make_reporter(json_mode)
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.WARNING,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


pass_ctx = click.make_pass_decorator(Ctx)


@click.group()
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="Config dir for keys and pairings (default: $PEERBEAM_HOME or the user config dir).")
@click.option("--json", "json_mode", is_flag=True, help="One JSON event per line, for scripts.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs on stderr.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, json_mode: bool, verbose: bool) -> None:
    """peerbeam: move what is on one screen to another, directly and end-to-end encrypted."""
    ctx.obj = Ctx(home or default_home(), json_mode, verbose)


def _json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` is accepted after the subcommand too (`peerbeam devices --json`)."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and ctx.obj is not None and not ctx.obj.json:
            ctx.obj.json = True
            ctx.obj.reporter = make_reporter(True)

    return click.option("--json", "json_late", is_flag=True, expose_value=False, callback=set_json,
                        is_eager=True, help="One JSON event per line.")(f)


@cli.command("signal")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--token-ttl", default=120.0, show_default=True, help="Seconds a pairing QR stays valid.")
@click.option("--turn-secret", envvar="PEERBEAM_TURN_SECRET", default=None,
              help="coturn static-auth-secret; enables TURN credentials (env PEERBEAM_TURN_SECRET).")
@click.option("--turn-url", "turn_urls", multiple=True, help="turn:/turns: URL handed to paired devices.")
@click.option("--turn-ttl", default=3600.0, show_default=True,
              help="Seconds the TURN credentials handed to a device stay valid.")
@click.option("--stun-url", "stun_urls", multiple=True, help="stun: URL handed to paired devices.")
@_json_option
@pass_ctx
def signal_cmd(ctx: Ctx, host: str, port: int, token_ttl: float, turn_secret: str | None,
               turn_urls: tuple[str, ...], turn_ttl: float, stun_urls: tuple[str, ...]) -> None:
    """Run the signaling server."""
    from signaling.server import start_server

    config = ServerConfig(host=host, port=port, token_ttl=token_ttl, turn_secret=turn_secret,
                          turn_urls=turn_urls, turn_ttl=turn_ttl, stun_urls=stun_urls)

    async def main() -> int:
        server = await start_server(config)
        # Bound to every interface: show the address other devices would use.
        lan = _lan_address() if host in ("0.0.0.0", "::") else None
        url = f"http://{lan}:{server.port}" if lan else server.url
        ctx.reporter.emit("server", url=url, port=server.port)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()
        return 0

    sys.exit(_run(main))


def _downloads_option(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--stall-timeout", type=float, default=None, hidden=True,
                     help="Seconds without data before a transfer counts as stalled (tests).")(f)
    return click.option("--downloads", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Folder for received files (default: $PEERBEAM_DOWNLOADS or your Downloads).")(f)


def _fast_path_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--no-fast-path", "no_fast_path", is_flag=True, hidden=True,
                        help="Send files over the data channel even on a LAN connection (benchmarks).")(f)


def _node_config(ctx: Ctx, **changes: Any) -> NodeConfig:
    if changes.get("name"):
        remember_name(ctx.home, changes["name"])
    else:
        changes["name"] = default_name(ctx.home)
    return NodeConfig(home=ctx.home, **{k: v for k, v in changes.items() if v is not None})


@cli.command()
@click.option("--server", default=None, help="Signaling server origin, e.g. http://HOST:8443. "
              "Without it the agent runs the server itself (embedded default).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Embedded server: listen address.")
@click.option("--port", default=8443, show_default=True, type=int, help="Embedded server: port.")
@click.option("--advertise", default=None, help="Embedded server: address put in the QR (default: the LAN address).")
@click.option("--name", default=None, help="This device's name as others see it.")
@click.option("--auto-accept", is_flag=True, help="Accept pairings and incoming files without asking.")
@click.option("--qr-png", type=click.Path(path_type=Path), default=None, help="Also write the QR as PNG here.")
@click.option("--qr-svg", type=click.Path(path_type=Path), default=None, help="Also write the QR as SVG here.")
@click.option("--connect-timeout", type=float, default=None, help="Seconds to open a connection before giving up.")
@click.option("--idle-timeout", type=float, default=None,
              help="Seconds without use before the agent stops answering pulls (default 7200).")
@click.option("--lan-port", type=click.IntRange(0, 65535), default=None,
              help="TCP port for paired devices on the LAN (default: one the system picks; advertised by mDNS).")
@click.option("--no-lan", is_flag=True, help="Neither listen nor advertise on the LAN (server rendezvous only).")
@_fast_path_option
@_downloads_option
@_json_option
@pass_ctx
def agent(ctx: Ctx, server: str | None, host: str, port: int, advertise: str | None, name: str | None,
          auto_accept: bool, qr_png: Path | None, qr_svg: Path | None, connect_timeout: float | None,
          idle_timeout: float | None, lan_port: int | None, no_lan: bool, no_fast_path: bool,
          downloads: Path | None, stall_timeout: float | None) -> None:
    """The PC agent: shows a pairing QR and keeps paired devices connected."""
    home = ctx.home
    config = _node_config(
        ctx, server=server, name=name, auto_accept=auto_accept,
        qr_png=qr_png or home / "pairing-qr.png", qr_svg=qr_svg or home / "pairing-qr.svg",
        connect_timeout=connect_timeout, idle_timeout=idle_timeout, downloads=downloads,
        stall_timeout=stall_timeout, lan=not no_lan, lan_port=lan_port, lan_fast_path=not no_fast_path,
    )

    async def main() -> int:
        from signaling.server import start_server

        embedded = None
        origin = server
        if origin is None:
            embedded = await start_server(ServerConfig(host=host, port=port))
            address = advertise or _lan_address()
            if address is None:
                address = "127.0.0.1"
                ctx.reporter.emit("warning", code="no_lan_address",
                                  message="No network interface with a route was found: the QR points at "
                                          "127.0.0.1 and works only on this machine. Use --advertise ADDRESS.")
            origin = f"http://{address}:{embedded.port}"
            ctx.reporter.emit("server", url=origin, port=embedded.port, embedded=True)
        node = _node_class()(NodeConfig(**{**config.__dict__, "server": origin}), ctx.reporter)
        try:
            await node.start()
            if config.lan:
                await node.start_lan()
            for record in node.book.load():
                node.maintain(record)
            await node.host_pairing(origin)
            return 0
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        finally:
            await node.close()
            if embedded is not None:
                await embedded.close()

    sys.exit(_run(main))


@cli.command()
@click.argument("link")
@click.option("--name", default=None, help="This device's name as the agent sees it.")
@click.option("--connect-timeout", type=float, default=None)
@click.option("--auto-accept", is_flag=True, help="Accept incoming files without asking.")
@_fast_path_option
@_downloads_option
@_json_option
@pass_ctx
def join(ctx: Ctx, link: str, name: str | None, connect_timeout: float | None, auto_accept: bool,
         no_fast_path: bool, downloads: Path | None, stall_timeout: float | None) -> None:
    """Pair with an agent from its QR link (what a phone camera opens), then stay connected."""
    try:
        parsed = parse_link(link)
    except LinkError as exc:
        ctx.reporter.emit("error", code=exc.code, message=exc.message)
        sys.exit(2)
    config = _node_config(ctx, name=name, device="cli", connect_timeout=connect_timeout, auto_accept=auto_accept,
                          downloads=downloads, stall_timeout=stall_timeout, lan_fast_path=not no_fast_path)

    async def main() -> int:
        node = _node_class()(config, ctx.reporter)
        try:
            await node.start()
            await node.join(parsed)
            await asyncio.Event().wait()
            return 0
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        finally:
            await node.close()

    sys.exit(_run(main))


@cli.command()
@click.argument("name")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Give up if the device is not reached within this many seconds.")
@click.option("--connect-timeout", type=float, default=None)
@click.option("--auto-accept", is_flag=True, help="Accept incoming files without asking.")
@click.option("--address", default=None, metavar="IP:PORT",
              help="The agent's LAN address and port (it prints them): connect there directly, without mDNS.")
@click.option("--no-lan", is_flag=True, help="Do not look for the device on the LAN (server rendezvous only).")
@_fast_path_option
@_downloads_option
@_json_option
@pass_ctx
def connect(ctx: Ctx, name: str, timeout: float, connect_timeout: float | None, auto_accept: bool,
            address: str | None, no_lan: bool, no_fast_path: bool, downloads: Path | None,
            stall_timeout: float | None) -> None:
    """Reconnect to a paired device (no QR): on the LAN first (found by mDNS, or at --address),
    else through the signaling server; then stay connected and reconnect after drops."""
    if address is not None:
        try:
            parse_address(address)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--address") from None
    config = _node_config(ctx, device="cli", connect_timeout=connect_timeout, auto_accept=auto_accept,
                          downloads=downloads, stall_timeout=stall_timeout, lan=not no_lan, lan_address=address,
                          lan_fast_path=not no_fast_path)

    async def main() -> int:
        node = _node_class()(config, ctx.reporter)
        try:
            record = node.book.find(name)
            if record is None:
                raise UnknownDevice(f"No paired device is called {name!r}. `peerbeam devices` lists them.")
            await node.start()
            await node.maintain(record, give_up_after=timeout)
            return 0
        except UnknownDevice as exc:
            return _fail(ctx.reporter, exc)
        except PeerbeamError:
            return 1  # maintain() already told the user why it gave up
        finally:
            await node.close()

    sys.exit(_run(main))


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _control_error(ctx: Ctx, reply: dict[str, Any]) -> int:
    ctx.reporter.emit("error", code=reply.get("code", "internal"), message=reply.get("message", ""))
    return 1


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--text", "text", default=None, help="Send this text.")
@click.option("--to", "to", default=None, help="The paired device's name (needed when several are connected).")
@_json_option
@pass_ctx
def send(ctx: Ctx, targets: tuple[str, ...], text: str | None, to: str | None) -> None:
    """Send files, a web page (http/https URL) or --text to a connected device.

    Goes through the running agent or peer. Ctrl-C cancels a file transfer on both sides;
    after a dropped connection the transfer resumes where it stopped.
    """
    if text is None and not targets:
        raise click.UsageError("Give files, a URL, or --text.")
    urls = [t for t in targets if _URL.match(t) and not Path(t).exists()]
    files = [t for t in targets if t not in urls]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        ctx.reporter.emit("error", code="bad_message", message=f"Not a file: {missing[0]}")
        sys.exit(2)
    sock = ctx.home / "control.sock"

    async def main() -> int:
        try:
            if text is not None:
                reply = await control.request(sock, {"cmd": "send_text", "text": text, "to": to})
                if not reply.get("ok"):
                    return _control_error(ctx, reply)
                ctx.reporter.emit("sent", name=reply["name"], id=reply["id"])
            for url in urls:
                reply = await control.request(sock, {"cmd": "send_url", "url": url, "to": to}, timeout=120)
                if not reply.get("ok"):
                    return _control_error(ctx, reply)
                ctx.reporter.emit("beamed", **{k: v for k, v in reply.items() if k != "ok"})
            if files:
                def show(event: dict[str, Any]) -> None:
                    ctx.reporter.emit(str(event.pop("event", "event")), **event)

                # No overall timeout: a transfer takes as long as it takes, with progress meanwhile.
                reply = await control.request(
                    sock, {"cmd": "send_files", "paths": [str(Path(f).resolve()) for f in files], "to": to},
                    timeout=None, on_event=show)
                if not reply.get("ok"):
                    return _control_error(ctx, reply)
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        return 0

    sys.exit(_run(main))


@cli.command()
@click.argument("transfer_id", required=False)
@_json_option
@pass_ctx
def cancel(ctx: Ctx, transfer_id: str | None) -> None:
    """Cancel a running file transfer (all of them without an id), on both sides."""

    async def main() -> int:
        try:
            reply = await control.request(ctx.home / "control.sock", {"cmd": "cancel", "id": transfer_id})
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        if not reply.get("ok"):
            return _control_error(ctx, reply)
        ctx.reporter.emit("cancelled", ids=reply["cancelled"],
                          message=f"Cancelled {len(reply['cancelled'])} transfer(s).")
        return 0

    sys.exit(_run(main))


@cli.command()
@click.option("--to", "to", default=None, help="The paired PC's name (needed when several are connected).")
@_json_option
@pass_ctx
def pull(ctx: Ctx, to: str | None) -> None:
    """Ask the paired PC for the page it shows now; the card is saved with the downloads."""

    async def main() -> int:
        try:
            reply = await control.request(ctx.home / "control.sock", {"cmd": "pull", "to": to}, timeout=120)
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        if not reply.get("ok"):
            return _control_error(ctx, reply)
        ctx.reporter.emit("pulled_page", **{k: v for k, v in reply.items() if k != "ok"})
        return 0

    sys.exit(_run(main))


@cli.command()
@_json_option
@pass_ctx
def activate(ctx: Ctx) -> None:
    """Wake the running agent so that paired devices can pull the current page again."""

    async def main() -> int:
        try:
            reply = await control.request(ctx.home / "control.sock", {"cmd": "activate"})
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        if not reply.get("ok"):
            return _control_error(ctx, reply)
        ctx.reporter.emit("active", woke=reply["woke"],
                          message="Active again." if reply["woke"] else "Already active.")
        return 0

    sys.exit(_run(main))


@cli.command()
@_json_option
@pass_ctx
def devices(ctx: Ctx) -> None:
    """List paired devices with when they were last seen."""

    async def main() -> int:
        connected: set[str] = set()
        with contextlib.suppress(PeerbeamError, OSError):
            reply = await control.request(ctx.home / "control.sock", {"cmd": "status"}, timeout=5)
            connected = {c["name"] for c in reply.get("connected", [])}
        records = PairingBook(ctx.home / "pairings.json").active()
        for record in sorted(records, key=lambda r: r.peer_name):
            ctx.reporter.emit("device", name=record.peer_name, last_seen=record.last_seen,
                              paired_at=record.paired_at, connected=record.peer_name in connected,
                              server=record.server)
        if not records and not ctx.json:
            click.echo("No paired devices. Run `peerbeam agent` and scan its QR code.")
        return 0

    sys.exit(_run(main))


@cli.command()
@click.argument("name")
@_json_option
@pass_ctx
def unpair(ctx: Ctx, name: str) -> None:
    """Remove a pairing on this device and, when it is connected, on the other one too."""

    async def main() -> int:
        try:
            reply = await control.request(ctx.home / "control.sock", {"cmd": "unpair", "name": name})
        except control.NoDaemon:
            book = PairingBook(ctx.home / "pairings.json")
            record = book.find(name)
            if record is None:
                return _fail(ctx.reporter, UnknownDevice(f"No paired device is called {name!r}."))
            book.bury(record.peer_key, time.time())
            ctx.reporter.emit("unpaired", name=name, told_peer=False,
                              message=f"{name} was not connected: it will be told the next time it "
                                      "reaches this device while peerbeam runs here.")
            return 0
        if not reply.get("ok"):
            ctx.reporter.emit("error", code=reply.get("code", "internal"), message=reply.get("message", ""))
            return 1
        told = reply.get("told_peer", False)
        ctx.reporter.emit("unpaired", name=name, told_peer=told,
                          message=f"{name} removed it too." if told else
                          f"{name} was not connected: it will be told the next time it reaches this device.")
        return 0

    sys.exit(_run(main))


@cli.group()
def sync() -> None:
    """Two-way page sync with a paired device (docs/SYNC.md): the PC tab and the phone's reader view."""


def _sync_request(ctx: Ctx, request: dict[str, Any], event: str, timeout: float = 120) -> None:
    async def main() -> int:
        try:
            reply = await control.request(ctx.home / "control.sock", {"cmd": "sync", **request}, timeout=timeout)
        except PeerbeamError as exc:
            return _fail(ctx.reporter, exc)
        if not reply.get("ok"):
            return _control_error(ctx, reply)
        ctx.reporter.emit(event, **{k: v for k, v in reply.items() if k != "ok"})
        return 0

    sys.exit(_run(main))


_to_option = click.option("--to", "to", default=None, help="The paired device (needed when several are connected).")


@sync.command("start")
@click.argument("url", required=False)
@_to_option
@_json_option
@pass_ctx
def sync_start(ctx: Ctx, url: str | None, to: str | None) -> None:
    """Mirror this PC's current tab (from the browser extension), or URL, on the paired phone."""
    _sync_request(ctx, {"action": "start", "url": url, "to": to}, "sync_started")


@sync.command("follow")
@_to_option
@_json_option
@pass_ctx
def sync_follow(ctx: Ctx, to: str | None) -> None:
    """Ask the paired PC to share its current tab with this device ("Follow my PC")."""
    _sync_request(ctx, {"action": "follow", "to": to}, "sync_following")


@sync.command("stop")
@_to_option
@_json_option
@pass_ctx
def sync_stop(ctx: Ctx, to: str | None) -> None:
    """End page sync on both devices."""
    _sync_request(ctx, {"action": "stop", "to": to}, "sync_stopped")


@sync.command("show")
@_to_option
@_json_option
@pass_ctx
def sync_show(ctx: Ctx, to: str | None) -> None:
    """Print the shared document: tabs, scroll, find, highlights, bookmarks, reader views."""
    _sync_request(ctx, {"action": "show", "to": to}, "sync_document")


@sync.command("op")
@click.argument("op")
@click.argument("args", default="{}")
@_to_option
@_json_option
@pass_ctx
def sync_op(ctx: Ctx, op: str, args: str, to: str | None) -> None:
    """Make one operation of docs/SYNC.md, e.g. `peerbeam sync op add_bookmark '{"id": ..., ...}'`."""
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="ARGS") from None
    _sync_request(ctx, {"action": "op", "op": op, "args": parsed, "to": to}, "sync_done")


@cli.command("install-extension-host")
@click.option("--browser-dir", "browser_dirs", multiple=True, type=click.Path(path_type=Path),
              help="A browser's user data dir (repeatable; default: ~/.config/chromium and ~/.config/google-chrome).")
@click.option("--extension-id", "extension_ids", multiple=True,
              help="The extension's id (repeatable; default: the id of browser_client/extension).")
@_json_option
@pass_ctx
def install_extension_host(ctx: Ctx, browser_dirs: tuple[Path, ...], extension_ids: tuple[str, ...]) -> None:
    """Let the browser extension reach this agent (writes Chrome's native messaging host files)."""
    from .native_host import EXTENSION_ID, NativeHostError
    from .native_install import default_browser_dirs, install_host, peerbeam_command

    try:
        written = install_host(browser_dirs or default_browser_dirs(), extension_ids or (EXTENSION_ID,),
                               ctx.home, peerbeam_command())
    except NativeHostError as exc:
        sys.exit(_fail(ctx.reporter, exc))
    for path in written:
        ctx.reporter.emit("installed", path=str(path))


@cli.command("extension-host", hidden=True, context_settings={"ignore_unknown_options": True})
@click.option("--extension-id", "extension_ids", multiple=True, help="Extension ids allowed to call.")
@click.argument("chrome_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def extension_host(ctx: Ctx, extension_ids: tuple[str, ...], chrome_args: tuple[str, ...]) -> None:
    """The native messaging host Chrome starts (stdin/stdout are Chrome's; see native_host.py)."""
    from .native_host import EXTENSION_ID, run_host

    sys.exit(_run(lambda: run_host(ctx.home, chrome_args, extension_ids or (EXTENSION_ID,))))


@cli.command()
def schema() -> None:
    """Print the wire schema as JSON Schema (the browser side is checked against it)."""
    click.echo(json.dumps(export_json_schema(), indent=2, sort_keys=True))


def main() -> None:
    cli(prog_name="peerbeam")


if __name__ == "__main__":
    main()
