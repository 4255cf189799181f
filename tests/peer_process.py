"""A process in a lab namespace that speaks one JSON event per line on stdout.

Our CLI (`peerbeam ... --json`) and the small lab scripts print objects like
{"event": "paired", "name": "..."}; tests wait for them with `expect`. Non-JSON lines are kept
too, and the tails of stdout and stderr go into every failure message.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import select
import signal
from collections.abc import Mapping
from typing import Any, Self

_TAIL_LINES = 40


class PeerProcess:
    """A process in a lab namespace whose stdout carries one JSON event per line."""

    def __init__(self, proc: asyncio.subprocess.Process, label: str) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.label = label
        self.events: list[dict[str, Any]] = []
        self.stdout_lines: collections.deque[str] = collections.deque(maxlen=2000)
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=2000)
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()  # set on every new event and at exit
        self._stopped = False
        # A pidfd tells, race-free, whether the leader has exited (it polls readable then),
        # and lets the synchronous Lab.close() wait for that without an event loop.
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except OSError:  # already gone, or a kernel without pidfd
            self._pidfd = None
        self._readers = [asyncio.create_task(self._read_stdout()),
                         asyncio.create_task(self._read_stderr())]
        self._exit_task = asyncio.create_task(self._await_exit())

    def __repr__(self) -> str:
        return f"PeerProcess({self.label!r}, pid={self.pid}, returncode={self.returncode})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def stderr_tail(self) -> str:
        return "\n".join(list(self.stderr_lines)[-_TAIL_LINES:])

    @property
    def stdout_tail(self) -> str:
        return "\n".join(list(self.stdout_lines)[-_TAIL_LINES:])

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.stdout_lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("event"), str):
                self.events.append(obj)
                self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))

    async def _await_exit(self) -> None:
        await self.proc.wait()
        # Let the readers drain what the process wrote before it died (bounded: a grandchild
        # holding the pipe open must not keep us here).
        await asyncio.wait(self._readers, timeout=2)
        self._release_pipes()
        self._changed.set()

    def _release_pipes(self) -> None:
        for reader in self._readers:  # a grandchild outside the group may hold a pipe
            reader.cancel()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        # asyncio.subprocess.Process has no public close(); an unclosed transport would be
        # closed at garbage collection, possibly after the test's loop is gone.
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()

    def _find(self, event: str, match: Mapping[str, Any]) -> dict[str, Any] | None:
        for i, ev in enumerate(self.events):
            if i in self._consumed or ev.get("event") != event:
                continue
            if all(k in ev and ev[k] == v for k, v in match.items()):
                self._consumed.add(i)
                return ev
        return None

    def _failure(self, why: str, event: str, match: Mapping[str, Any]) -> AssertionError:
        wanted = json.dumps({"event": event, **match}, default=str)
        seen = ", ".join(str(e.get("event")) for e in self.events) or "none"
        return AssertionError(
            f"{self.label} (pid {self.pid}): {why} while waiting for {wanted}\n"
            f"events seen: {seen}\n"
            f"--- last stdout lines ---\n{self.stdout_tail}\n"
            f"--- last stderr lines ---\n{self.stderr_tail}")

    async def expect(self, event: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        """Return the first not-yet-consumed event named `event` whose fields equal `match`."""
        __tracebackhide__ = True  # the AssertionError carries what matters
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self._find(event, match)
            if found is not None:
                return found
            if self._exit_task.done():
                raise self._failure(f"process exited with code {self.returncode}",
                                    event, match)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._failure(f"no such event within {timeout:g} s", event, match)
            # No await between the check above and clear(): nothing can slip in between.
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def write_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait(self, timeout: float = 20) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        await asyncio.wait_for(asyncio.shield(self._exit_task), timeout)
        assert self.returncode is not None
        return self.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        # The process leads its own session (start_new_session), so its PID is the process
        # group id of everything it started that did not make a session of its own.
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _leader_alive(self) -> bool:
        if self._pidfd is None:
            return self.proc.returncode is None
        return not select.select([self._pidfd], [], [], 0)[0]

    async def stop(self, grace: float = 5) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds. Idempotent."""
        if not self._stopped:
            self._stopped = True
            if self.returncode is None:
                self._signal_group(signal.SIGTERM)
                try:
                    await asyncio.wait_for(asyncio.shield(self._exit_task), grace)
                except TimeoutError:
                    pass
            self._signal_group(signal.SIGKILL)  # stragglers of the group, if any
            await asyncio.wait_for(asyncio.shield(self._exit_task), grace)
            self._close_pidfd()
        return self.returncode

    def kill_now(self, grace: float = 3) -> None:
        """Synchronous teardown (Lab.close): SIGTERM, wait on the pidfd, then SIGKILL.

        Works without a running event loop, so a sync fixture can call it after the test's
        loop is gone. A process already stopped through stop() is left alone.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._leader_alive():
            self._signal_group(signal.SIGTERM)
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], grace)
        self._signal_group(signal.SIGKILL)
        self._close_pidfd()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
