"""A running peerbeam node: the PC agent, or the headless peer after `join` / `connect`.

One class serves both, because both do the same three things once paired:

* ``host_pairing`` (the agent): a pairing room on the server, a QR refreshed before its token
  expires, and for every device that joins the NK handshake, the user's confirmation, a
  pairing record and a session;
* ``maintain`` (either side): for each pairing record, meet the other device — on the LAN first
  (the peer looks for its agent by mDNS, or at ``--address``, and connects to it directly), else
  through the server's rendezvous id of the day — run the KK handshake, keep the session, and
  start over with backoff when it drops — so a killed agent is found again when it returns;
* ``start_lan`` (the agent): a TCP port for paired devices on the LAN, advertised by mDNS
  (lan_listener.py, mdns.py); a device that connects there gets the same session as one met
  through the server, and file data then takes the LAN fast path (fast_path.py);
* the control socket, through which `peerbeam send`, `unpair` and `devices` act on the live
  sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec

from crypto.kdf import day_of, pair_secret, rendezvous_id
from crypto.keys import b64u_encode, public_bytes
from crypto.link import PairingLink, new_secret
from crypto.records import PairingRecord
from signaling.schema import (
    ErrorCode,
    Hello,
    JoinRefused,
    PairCreate,
    PairCreated,
    PairJoin,
    PairJoined,
    PairRefresh,
    PeerJoined,
    Rendezvous,
    RendezvousMatched,
    TransferOffer,
)

from . import qr
from .config import NodeConfig
from .beaming import Beamer
from . import syncing
from .control import Conn, ControlServer
from .files import TransferBroken, file_digest
from .errors import PeerbeamError, ServerRefused, ServerUnreachable, UnknownDevice
from .handshake import LAN_PROLOGUE, HandshakeCompleted, SecureSession, hello_for
from .lan_dialer import LanDialer
from .lan_listener import LanListener
from .lan_signal import LanSignal
from .mdns import LanAdvertiser, LanUnavailable
from .mdns_browser import LanService
from .pairings import PairingBook, load_identity
from .relay_check import RelayVerdict
from .report import JsonReporter, Reporter
from .session import DeviceRemoved, Dialogue, PeerSession, ToldRemoved, establish
from .signal_client import SignalClient

logger = logging.getLogger(__name__)

class _AgentOnLan(Exception):
    """While we waited at the server, the agent showed up on the LAN: go there instead."""


class Node:
    def __init__(self, config: NodeConfig, reporter: Reporter) -> None:
        self.config = config
        self.reporter = reporter
        self.book = PairingBook(config.records_path)
        self.identity = load_identity(config.identity_path)
        self.sessions: dict[bytes, PeerSession] = {}
        self._maintained: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._control = ControlServer(config.control_path, self._on_control)
        self._confirm_lock = asyncio.Lock()
        self._closed = False
        self._lan_listener: LanListener | None = None
        self._advertiser: LanAdvertiser | None = None
        self._dialer = LanDialer(config=config, reporter=reporter, hello=lambda: self.hello, identity=self.identity)
        self.beamer = Beamer(config=config, reporter=reporter, pick=self._pick, devices=self._device_list)
        self.syncer = syncing.Syncer(config=config, reporter=reporter, beamer=self.beamer, pick=self._pick)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.config.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        await self._control.start()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._advertiser is not None:
            await self._advertiser.close()  # goodbye packets first: browsers drop us at once
        if self._lan_listener is not None:
            await self._lan_listener.close()
        for task in list(self._tasks) + list(self._maintained.values()):
            task.cancel()
        for session in list(self.sessions.values()):
            await session.close()
        await asyncio.gather(*self._tasks, *self._maintained.values(), return_exceptions=True)
        await self._control.close()
        await self.beamer.close()
        await self.syncer.close()
        await self._dialer.close()

    @property
    def hello(self) -> Hello:
        return hello_for(self.config.name, self.identity, self.config.device)

    # -- first pairing: the agent's side --------------------------------------------------------

    async def host_pairing(self, origin: str) -> None:
        """Keep a fresh pairing QR up; pair every device that scans it (after confirmation)."""
        backoff = self.config.retry_min
        while True:
            try:
                await self._one_pairing_room(origin)
                backoff = self.config.retry_min
            except (ServerUnreachable, ServerRefused) as exc:
                self.reporter.emit("error", code=str(exc.code), message=exc.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.retry_max)

    async def _one_pairing_room(self, origin: str) -> None:
        signal = await SignalClient.connect(origin)
        handed_over = False
        try:
            await signal.send(PairCreate(name=self.config.name))
            created = await signal.expect_one(PairCreated, timeout=10)
            secret = new_secret()
            await self._show_qr(origin, created, secret)
            joined = await self._wait_for_join(signal, origin, created, secret)
            self.reporter.emit("joined", name=joined.name, side="agent")
            dialogue = Dialogue(
                signal,
                SecureSession.for_pairing(
                    role="responder", hello=self.hello, identity=self.identity, qr_secret=secret, agent_key=None
                ),
                on_refused_join=self._report_refused_join,
            )
            handed_over = True
            try:
                done, link = await establish(
                    dialogue,
                    role="responder",
                    pairing=True,
                    ice_servers=created.ice_servers,
                    config=self.config,
                    confirm=self._confirm,
                    on_handshake=lambda d: self.reporter.emit("verify", name=d.peer.name, code=d.code),
                    on_retry=self._retrying(joined.name),
                )
            except PeerbeamError as exc:
                await dialogue.close()
                self.reporter.emit("error", code=str(exc.code), message=exc.message, name=joined.name)
                return
            record = self._new_record(done, role="responder", server=origin)
            session = self._session(record, dialogue, link)
            self.reporter.emit("paired", name=record.peer_name, code=done.code)
            self.spawn(self._run_then_maintain(session, record))
        finally:
            if not handed_over:
                await signal.close()

    async def _wait_for_join(
        self, signal: SignalClient, origin: str, created: PairCreated, secret: bytes
    ) -> PeerJoined:
        while True:
            refresh_in = created.expires_at - time.time() - self.config.qr_refresh_margin
            try:
                async with asyncio.timeout(max(refresh_in, 1.0)):
                    msg = await signal.expect(PeerJoined, JoinRefused, timeout=None)
            except TimeoutError:
                # The token is about to expire: a fresh one for the same room, a fresh QR.
                await signal.send(PairRefresh())
                created = await signal.expect_one(PairCreated, timeout=10)
                await self._show_qr(origin, created, secret)
                continue
            if isinstance(msg, JoinRefused):
                self._report_refused_join(msg)
                continue
            assert isinstance(msg, PeerJoined)
            return msg

    def _report_refused_join(self, msg: JoinRefused) -> None:
        self.reporter.emit("join_refused", code=str(msg.code), message=msg.message)

    async def _show_qr(self, origin: str, created: PairCreated, secret: bytes) -> None:
        url = PairingLink(origin=origin, token=created.token, secret=secret,
                          agent_key=public_bytes(self.identity)).to_url()
        # Drawing the images costs ~30 ms of CPU: off the event loop, so that live sessions
        # do not stall every time the QR is refreshed.
        if self.config.qr_png:
            await asyncio.to_thread(qr.write_png, url, self.config.qr_png)
        if self.config.qr_svg:
            await asyncio.to_thread(qr.write_svg, url, self.config.qr_svg)
        self.reporter.emit("qr", url=url, expires_at=created.expires_at,
                           png=str(self.config.qr_png or ""), svg=str(self.config.qr_svg or ""))
        if not isinstance(self.reporter, JsonReporter):
            self.reporter.emit("qr_text", text=qr.terminal_text(url))

    async def _confirm(self, peer: Hello, code: str) -> bool:
        if self.config.auto_accept:
            return True
        async with self._confirm_lock:
            self.reporter.emit("confirm", name=peer.name, code=code,
                               message=f"Pair with {peer.name}? Check the code {code} on both screens, "
                                       "then answer y or n.")
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, sys.stdin.readline)
            return answer.strip().lower() in ("y", "yes")

    async def _decide_file(self, name: str, offer: TransferOffer, offset: int) -> bool:
        if self.config.auto_accept:
            return True
        async with self._confirm_lock:
            resumed = f", resuming at {offset * 100 // max(offer.size, 1)} %" if offset else ""
            self.reporter.emit("confirm_file", name=name, id=offer.id, file=offer.name, size=offer.size,
                               offset=offset,
                               message=f"{name} wants to send you {offer.name} ({offer.size} bytes{resumed}). "
                                       "Accept? Answer y or n.")
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, sys.stdin.readline)
            return answer.strip().lower() in ("y", "yes")

    # -- first pairing: the joining side --------------------------------------------------------

    async def join(self, link: PairingLink) -> PairingRecord:
        """Claim the QR's token, pair, connect; returns the new record (session keeps running)."""
        signal = await SignalClient.connect(link.origin)
        try:
            await signal.send(PairJoin(token=link.token, name=self.config.name))
            bound = await signal.expect_one(PairJoined, timeout=10)
        except BaseException:
            await signal.close()
            raise
        assert isinstance(bound, PairJoined)
        self.reporter.emit("joined", name=bound.peer_name, side="joiner")
        dialogue = Dialogue(
            signal,
            SecureSession.for_pairing(
                role="initiator", hello=self.hello, identity=self.identity, qr_secret=link.secret,
                agent_key=link.agent_key,
            ),
        )
        try:
            done, rtc = await establish(
                dialogue,
                role="initiator",
                pairing=True,
                ice_servers=bound.ice_servers,
                config=self.config,
                on_handshake=lambda d: self.reporter.emit("verify", name=d.peer.name, code=d.code),
                on_retry=self._retrying(bound.peer_name),
            )
        except BaseException:
            await dialogue.close()
            raise
        record = self._new_record(done, role="initiator", server=link.origin)
        session = self._session(record, dialogue, rtc)
        self.reporter.emit("paired", name=record.peer_name, code=done.code)
        self.spawn(self._run_then_maintain(session, record))
        return record

    def _retrying(self, name: str) -> Callable[[RelayVerdict, str], None]:
        def report(verdict: RelayVerdict, transport: str) -> None:
            self.reporter.emit("retry", name=name, relay=verdict.outcome, via=transport,
                               message=f"No network path to {name} yet. {verdict.sentence()} "
                                       f"Trying the relay over {transport.upper()}.")
        return report

    def _new_record(self, done: HandshakeCompleted, *, role: str, server: str) -> PairingRecord:
        now = time.time()
        record = PairingRecord(
            peer_name=done.peer.name,
            peer_key=done.peer.identity_key,
            pair_secret=pair_secret(done.chaining_key),
            role=role,  # type: ignore[arg-type]
            server=server,
            paired_at=now,
            last_seen=now,
        )
        self.book.put(record)
        self._lan_changed()
        return record

    # -- sessions and reconnects ----------------------------------------------------------------

    def _session(self, record: PairingRecord, dialogue: Dialogue, link: Any) -> PeerSession:
        session = PeerSession(
            name=record.peer_name,
            peer_key=record.peer_key,
            pair_secret=record.pair_secret,
            dialogue=dialogue,
            link=link,
            reporter=self.reporter,
            config=self.config,
            on_unpaired=self._forget,
            decide=self._decide_file,
        )
        self.sessions[record.peer_key] = session
        self.beamer.attach(session)
        self.syncer.attach(session)
        return session

    def _forget(self, peer_key: bytes, *, told: bool = True) -> None:
        """Drop a pairing. If the other device could not be told, keep a tombstone that tells
        it when it next reconnects, instead of leaving it waiting for an answer."""
        task = self._maintained.pop(peer_key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._lan_changed()
        self.syncer.forget(peer_key)
        if told:
            self.book.remove(peer_key)
            return
        self.book.bury(peer_key, time.time())
        record = self.book.get(peer_key)
        if record is not None and not self._closed:
            self.maintain(record)

    async def _run_session(self, session: PeerSession) -> str:
        with contextlib.suppress(PeerbeamError):
            await session.measure_rtt()
        self.reporter.emit("connected", name=session.name, path=session.path_fields())
        self.reporter.emit("path", name=session.name, **session.path_fields())
        self.book.touch(session.peer_key, time.time())
        self.beamer.status_changed()
        try:
            reason = await session.run()
        finally:
            self.beamer.detach(session)
            self.syncer.detach(session)
            if self.sessions.get(session.peer_key) is session:
                del self.sessions[session.peer_key]
            self.beamer.status_changed()
        if reason not in ("unpaired", "closed", "superseded"):
            self.reporter.emit("disconnected", name=session.name, message=reason)
        return reason

    async def _run_then_maintain(self, session: PeerSession, record: PairingRecord) -> None:
        reason = await self._run_session(session)
        if reason not in ("unpaired", "superseded") and not self._closed:
            self.maintain(record)

    def maintain(self, record: PairingRecord, give_up_after: float | None = None) -> asyncio.Task[None]:
        """Keep a session with this paired device up, reconnecting with backoff."""
        existing = self._maintained.get(record.peer_key)
        if existing is not None and not existing.done():
            return existing
        task = asyncio.create_task(self._maintain(record, give_up_after))
        self._maintained[record.peer_key] = task
        return task

    async def _maintain(self, record: PairingRecord, give_up_after: float | None) -> None:
        backoff = self.config.retry_min
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        failed_connects = 0  # where the next establish starts in the TURN transports (ice_order.py)
        last_error: PeerbeamError | None = None
        while (current := self.book.get(record.peer_key)) is not None:
            try:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    # The last attempt's reason says more than "offline" (e.g. how to connect
                    # by address when mDNS found nothing).
                    why = last_error.message if last_error is not None else \
                        "It is offline, or no longer paired with this device."
                    raise PeerbeamError(f"{record.peer_name} did not answer within {give_up_after:g} s. {why}",
                                        code=ErrorCode.CONNECT_TIMEOUT)
                session = await self._reach(current, remaining, failed_connects)
            except ToldRemoved:
                self.book.remove(record.peer_key)
                self._lan_changed()
                self.reporter.emit("unpaired", name=record.peer_name, told_peer=True,
                                   message=f"{record.peer_name} came back and was told the pairing is removed.")
                return
            except DeviceRemoved as exc:
                self._forget(record.peer_key)
                self.reporter.emit("unpaired", name=record.peer_name, by="peer", message=exc.message)
                raise
            except PeerbeamError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    self.reporter.emit("error", code=str(exc.code), message=exc.message, name=record.peer_name)
                    raise
                logger.info("reconnect to %s failed: %s", record.peer_name, exc.code)
                last_error = exc
                if exc.code in (ErrorCode.CONNECT_TIMEOUT, ErrorCode.RELAY_UNAVAILABLE):
                    failed_connects += 1
                if exc.code == ErrorCode.INTERCEPTION:
                    self.reporter.emit("error", code=str(exc.code), message=exc.message, name=record.peer_name)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.retry_max)
                continue
            backoff = self.config.retry_min
            failed_connects = 0
            deadline = None  # once connected, a later drop retries for as long as we run
            await self._run_session(session)  # the loop condition sees an unpairing

    async def _rendezvous(self, record: PairingRecord, timeout: float | None, attempt: int = 0,
                          lan_tried: set[LanService] | None = None) -> PeerSession:
        """Meet the other device through the server. With ``lan_tried`` (a peer that looked on
        the LAN first), a new agent showing up on the LAN meanwhile ends the wait (_AgentOnLan)."""
        origin = record.server or self.config.server
        if not origin:
            raise ServerUnreachable("No signaling server is known for this pairing.")
        signal = await SignalClient.connect(origin)
        handed_over = False
        try:
            day = day_of(time.time())
            rid = b64u_encode(rendezvous_id(record.pair_secret, day))
            await signal.send(Rendezvous(rid=rid))
            self.reporter.emit("waiting", name=record.peer_name)
            # The rendezvous id changes at midnight UTC: wait at most until then, then present
            # the new one (both sides do the same).
            until_tomorrow = (day + 1) * 86400 - time.time() + 1
            wait = until_tomorrow if timeout is None else min(timeout, until_tomorrow)
            try:
                matched = await self._await_match(signal, wait, record, lan_tried)
            except TimeoutError:
                raise PeerbeamError(f"{record.peer_name} did not show up.", code=ErrorCode.CONNECT_TIMEOUT) from None
            assert isinstance(matched, RendezvousMatched)
            dialogue = Dialogue(
                signal,
                SecureSession.for_reconnect(
                    role=record.role, hello=self.hello, identity=self.identity,
                    pair_secret=record.pair_secret, peer_key=record.peer_key,
                ),
            )
            handed_over = True
            try:
                done, link = await establish(
                    dialogue, role=record.role, pairing=False,
                    ice_servers=matched.ice_servers, first_attempt=attempt,
                    config=self.config, tombstone=record.removed_at is not None,
                    on_retry=self._retrying(record.peer_name),
                )
            except BaseException:
                await dialogue.close()
                raise
            if done.peer.name != record.peer_name:
                self.book.update(record.peer_key, lambda r: _renamed(r, done.peer.name))
            return self._session(record, dialogue, link)
        finally:
            if not handed_over:
                await signal.close()

    async def _await_match(self, signal: SignalClient, wait: float, record: PairingRecord,
                           lan_tried: set[LanService] | None) -> RendezvousMatched:
        matched = asyncio.ensure_future(signal.expect_one(RendezvousMatched, timeout=wait))
        if lan_tried is None:
            return await matched
        # Services already tried (and failed) are no reason to leave; a new one is: the agent
        # restarted on the LAN while we wait here, and a direct connection beats the server.
        watch = asyncio.ensure_future(self._dialer.watch(record, wait, lan_tried))
        try:
            done, _ = await asyncio.wait({matched, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            matched.cancel()
            watch.cancel()
            raise
        if matched in done:
            watch.cancel()
            return matched.result()
        if watch.exception() is None and watch.result():
            matched.cancel()
            raise _AgentOnLan()
        return await matched  # the watch ran out of time: so does this, about now

    # -- the LAN: the agent's side --------------------------------------------------------------

    async def start_lan(self) -> None:
        """Listen for paired devices on a LAN TCP port and advertise it by mDNS. Without a usable
        network interface, devices can still connect by address: say so, and go on."""
        listener = LanListener(port=self.config.lan_port, records=self.book.load, hello=lambda: self.hello,
                               identity=self.identity, on_peer=self._on_lan_peer, on_refused=self._on_lan_refused)
        try:
            await listener.start()
        except OSError as exc:
            raise PeerbeamError(f"Cannot listen on LAN port {self.config.lan_port} ({exc.strerror}). "
                                "Choose another one with --lan-port.") from None
        self._lan_listener = listener
        advertiser = LanAdvertiser(self.book.load, listener.port)
        try:
            await advertiser.start()
        except (LanUnavailable, OSError) as exc:
            why = exc.message if isinstance(exc, LanUnavailable) else type(exc).__name__
            self.reporter.emit("warning", code="lan_unavailable",
                               message=f"Paired devices on the local network cannot find this agent by mDNS ({why}). "
                                       f"They can still connect by address, to port {listener.port}.")
            return
        self._advertiser = advertiser
        addresses = advertiser.addresses
        hint = f"{addresses[0]}:{listener.port}" if addresses else f"ADDRESS:{listener.port}"
        if ":" in hint.rsplit(":", 1)[0]:
            hint = f"[{addresses[0]}]:{listener.port}"
        self.reporter.emit("lan", port=listener.port, addresses=addresses, service=advertiser.names.instance,
                           message=f"Paired devices on this network find this agent by mDNS, or connect with: "
                                   f"peerbeam connect \"{self.config.name}\" --address {hint}")

    def _lan_changed(self) -> None:
        """The pairings changed: the mDNS record's tags follow now, not at the next check."""
        if self._advertiser is not None:
            self._advertiser.refresh()

    def _on_lan_refused(self, address: str, reason: str) -> None:
        self.reporter.emit("lan_refused", side="agent", address=address, reason=reason)

    async def _on_lan_peer(self, record: PairingRecord, signal: LanSignal) -> None:
        """A paired device reached our LAN port: the same setup as after a server rendezvous."""
        if self._closed:
            await signal.close()
            return
        dialogue = Dialogue(signal, SecureSession.for_reconnect(
            role=record.role, hello=self.hello, identity=self.identity, pair_secret=record.pair_secret,
            peer_key=record.peer_key, prologue=LAN_PROLOGUE))
        try:
            done, link = await establish(
                dialogue, role=record.role, pairing=False, ice_servers=[], config=self.config,
                tombstone=record.removed_at is not None, handshake_timeout=self.config.lan_handshake_timeout)
        except ToldRemoved:
            await dialogue.close()
            self._forget(record.peer_key)
            self.reporter.emit("unpaired", name=record.peer_name, told_peer=True,
                               message=f"{record.peer_name} came back and was told the pairing is removed.")
            return
        except DeviceRemoved as exc:
            await dialogue.close()
            self._forget(record.peer_key)
            self.reporter.emit("unpaired", name=record.peer_name, by="peer", message=exc.message)
            return
        except BaseException:
            await dialogue.close()
            raise
        if self._closed:  # the agent is shutting down: nobody would run the session
            await link.close()
            await dialogue.close()
            return
        if done.peer.name != record.peer_name:
            self.book.update(record.peer_key, lambda r: _renamed(r, done.peer.name))
        self._adopt(record, dialogue, link)

    def _adopt(self, record: PairingRecord, dialogue: Dialogue, link: Any) -> None:
        """Make a session that arrived by itself (over the LAN) the one for this device.

        Only once it is established — authenticated, and live, which a replayed handshake
        message is not — does it replace what ran before: a reconnect there was, or a session
        the device has already left (it would not call again otherwise). Synchronous, so no
        other reconnect can slip in between.
        """
        owner = self._maintained.pop(record.peer_key, None)
        if owner is not None and not owner.done():
            owner.cancel()
        old = self.sessions.get(record.peer_key)
        if old is not None:
            old.supersede()
        session = self._session(record, dialogue, link)
        self._maintained[record.peer_key] = asyncio.create_task(self._run_adopted(session, record))

    async def _run_adopted(self, session: PeerSession, record: PairingRecord) -> None:
        # This task owns the device now (it is in _maintained): after the session, it keeps
        # reconnecting itself rather than through maintain(), which would see it and return.
        reason = await self._run_session(session)
        if reason not in ("unpaired", "superseded") and not self._closed:
            await self._maintain(record, None)

    # -- the LAN: the peer's side ---------------------------------------------------------------

    async def _reach(self, record: PairingRecord, timeout: float | None, attempt: int) -> PeerSession:
        """LAN first (we are the peer: we look for the agent), then the server's rendezvous."""
        deadline = None if timeout is None else time.monotonic() + timeout
        look_on_lan = record.role == "initiator" and (self.config.lan or self.config.lan_address is not None)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            tried: set[LanService] | None = None
            if look_on_lan:
                connected, tried = await self._dialer.connect(record, remaining)
                if connected is not None:
                    if connected.done.peer.name != record.peer_name:
                        self.book.update(record.peer_key, lambda r: _renamed(r, connected.done.peer.name))
                    return self._session(record, connected.dialogue, connected.link)
            origin = record.server or self.config.server
            if not origin:
                raise PeerbeamError(self._not_on_lan(record), code=ErrorCode.CONNECT_TIMEOUT)
            try:
                return await self._rendezvous(record, remaining, attempt,
                                              tried if self.config.lan_address is None else None)
            except _AgentOnLan:
                logger.info("%s appeared on the LAN while we waited at the server", record.peer_name)
                continue
            except ServerUnreachable as exc:
                if not look_on_lan:
                    raise
                raise ServerUnreachable(f"{exc.message} {self._not_on_lan(record)}") from None

    def _not_on_lan(self, record: PairingRecord) -> str:
        name = record.peer_name
        if self.config.lan_address is not None:
            return f"{name} did not answer at {self.config.lan_address} on the local network."
        return (f"{name} was not found on the local network (mDNS may be blocked here: client isolation, "
                f"VLANs) and no signaling server is configured for it. If it is on this network, connect "
                f"by address: peerbeam connect \"{name}\" --address IP:PORT (the agent shows its LAN "
                "address and port when it starts).")

    # -- local control --------------------------------------------------------------------------

    def _pick(self, name: str | None) -> PeerSession:
        # A session whose link just dropped stays registered until its task notices; a
        # transfer resuming after that drop must wait for the next session, not reuse it.
        live = [s for s in self.sessions.values() if not s.ended]
        if name is not None:
            for session in live:
                if session.name == name:
                    return session
            if self.book.find(name) is None:
                raise UnknownDevice(f"No paired device is called {name!r}. `peerbeam devices` lists them.")
            raise PeerbeamError(f"{name} is paired but not connected right now.", code=ErrorCode.PEER_GONE)
        if len(live) == 1:
            return live[0]
        if not live:
            raise PeerbeamError("No paired device is connected right now.", code=ErrorCode.PEER_GONE)
        names = ", ".join(sorted(s.name for s in live))
        raise PeerbeamError(f"Several devices are connected ({names}): choose one with --to.",
                            code=ErrorCode.BAD_MESSAGE)

    async def _wait_for_session(self, name: str | None, timeout: float) -> PeerSession:
        """The connected session to ``name``, waiting up to ``timeout`` for a reconnect."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._pick(name)
            except UnknownDevice:
                raise
            except PeerbeamError:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.2)

    async def _send_one_file(self, path: Path, to: str | None, conn: Conn) -> dict[str, Any]:
        session = self._pick(to)
        digest = await asyncio.to_thread(file_digest, path)
        while True:
            try:
                result = await session.files.send_file(path, conn.send, sha256=digest)
            except TransferBroken:
                conn.send({"event": "waiting", "name": session.name, "file": path.name,
                           "message": f"The connection to {session.name} dropped; the transfer resumes "
                                      f"when it is back (waiting up to {self.config.resume_wait:g} s)."})
                session = await self._wait_for_session(session.name, self.config.resume_wait)
                continue
            return {"name": session.name, "id": result.id, "file": result.file, "size": result.size,
                    "sha256": result.sha256, "seconds": result.seconds, "resumed_from": result.resumed_from,
                    "via": result.via}

    async def _control_send_files(self, request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        raw = request.get("paths")
        if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
            raise PeerbeamError("Nothing to send.", code=ErrorCode.BAD_MESSAGE)
        paths = [Path(p) for p in raw]
        for path in paths:
            if not path.is_absolute() or not path.is_file():
                raise PeerbeamError(f"{path} is not a file that can be sent.", code=ErrorCode.BAD_MESSAGE)
        to = request.get("to") if isinstance(request.get("to"), str) else None

        async def all_files() -> list[dict[str, Any]]:
            return [await self._send_one_file(path, to, conn) for path in paths]

        task = asyncio.ensure_future(all_files())
        try:
            watched: list[asyncio.Future[Any]] = [task, conn.closed]
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()  # `peerbeam send` went away (Ctrl-C): the transfer is cancelled
        if not task.done() or task.cancelled():
            with contextlib.suppress(asyncio.CancelledError, PeerbeamError):
                await task
            return {"ok": False, "code": "cancelled", "message": "Cancelled."}
        return {"ok": True, "files": task.result()}

    def _device_list(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "path": s.path_fields()} for s in self.sessions.values()]

    async def _on_control(self, request: dict[str, Any], conn: Conn) -> dict[str, Any]:
        cmd = request.get("cmd")
        to = request.get("to") if isinstance(request.get("to"), str) else None
        if cmd in ("send_files", "send_text", "send_url"):
            self.beamer.use()  # someone is at this machine
        if cmd == "send_files":
            return await self._control_send_files(request, conn)
        if cmd == "send_url":
            url = request.get("url")
            if not isinstance(url, str):
                raise PeerbeamError("No address to send.", code=ErrorCode.BAD_MESSAGE)
            return {"ok": True, **await self.beamer.send_url(url, to)}
        if cmd == "pull":
            return {"ok": True, **await self.beamer.pull(to)}
        if cmd == "activate":
            woke = self.beamer.use()
            return {"ok": True, "woke": woke, "name": self.config.name}
        if cmd == "sync":
            return await syncing.control(self.syncer, request)
        if cmd == "extension":
            return await self.beamer.serve_extension(request, conn)
        if cmd == "cancel":
            wanted = request.get("id") if isinstance(request.get("id"), str) else None
            cancelled = [tid for s in self.sessions.values() for tid in s.files.cancel(wanted)]
            if wanted is not None and not cancelled:
                raise PeerbeamError(f"No transfer {wanted} is running.", code=ErrorCode.UNKNOWN_TRANSFER)
            return {"ok": True, "cancelled": cancelled}
        if cmd == "send_text":
            text = request.get("text")
            if not isinstance(text, str) or not text:
                raise PeerbeamError("Nothing to send.", code=ErrorCode.BAD_MESSAGE)
            session = self._pick(request.get("to"))
            message_id = await session.send_text(text)
            return {"ok": True, "name": session.name, "id": message_id}
        if cmd == "unpair":
            name = request.get("name")
            record = self.book.find(name) if isinstance(name, str) else None
            if record is None:
                raise UnknownDevice(f"No paired device is called {name!r}.")
            live = self.sessions.get(record.peer_key)
            told = False
            if live is not None:
                await live.unpair()
                told = True
            self._forget(record.peer_key, told=told)
            return {"ok": True, "name": record.peer_name, "told_peer": told}
        if cmd == "status":
            return {
                "ok": True,
                "connected": [{"name": s.name, "path": s.path_fields(), "transfers": s.files.active()}
                              for s in self.sessions.values()],
            }
        raise PeerbeamError(f"Unknown control command {cmd!r}.", code=ErrorCode.BAD_MESSAGE)


def _renamed(record: PairingRecord, name: str) -> PairingRecord:
    return msgspec.structs.replace(record, peer_name=name)
