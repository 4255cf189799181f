"""Python ↔ JS: a pycrdt SyncDoc and a yjs SyncDoc (node) end in the same state.

The JS side is ``browser_client/test/sync_driver.mjs`` (JSON lines, one process for this
module). Random concurrent operation streams run on both; the updates cross over in random
order, some twice, some held back and delivered later; then both state()s must be equal.
Also: the y-protocols handshake between the two real wires (peer_agent/sync_wire.py and
browser_client/app/core/sync_wire.js), and both sides dropping the same hostile entries.
"""

from __future__ import annotations

import base64
import json
import math
import random
import selectors
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peer_agent.sync_doc import SyncDoc
from peer_agent.sync_wire import SyncLink
from signaling.schema import MAX_SYNC_CHUNK, SyncUpdate, decode_channel, encode
from tests.unit.sync_ops import as_floats, operations
from tests.unit.test_sync_doc import BAD_CALLS, hostile_update

CLIENT = Path(__file__).resolve().parents[2] / "browser_client"
DRIVER = CLIENT / "test" / "sync_driver.mjs"
REPLY_TIMEOUT = 10.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class Node:
    """A node process speaking JSON lines: one reply line per command line."""

    def __init__(self, args: list[str]) -> None:
        node = shutil.which("node")
        assert node is not None
        self.process = subprocess.Popen([node, *args], cwd=CLIENT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.selector = selectors.DefaultSelector()
        assert self.process.stdout is not None
        self.selector.register(self.process.stdout, selectors.EVENT_READ)

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        if not self.selector.select(REPLY_TIMEOUT):
            raise AssertionError(f"node did not answer {command!r} within {REPLY_TIMEOUT} s")
        line = self.process.stdout.readline()
        if not line:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"node exited ({self.process.poll()}): {stderr}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()  # only the process this fixture started
            self.process.wait()
        self.selector.close()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _node_or_skip() -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: scripts/bootstrap installs nodejs and npm")
    if not DRIVER.is_file():
        pytest.fail(f"{DRIVER} is missing")


@pytest.fixture(scope="module")
def js() -> Iterator[Node]:
    _node_or_skip()
    node = Node([str(DRIVER.relative_to(CLIENT))])
    try:
        yield node
    finally:
        node.close()


class JsDoc:
    """One named document in the driver."""

    def __init__(self, node: Node, name: str) -> None:
        self.node, self.name = node, name

    def op(self, name: str, args: tuple[Any, ...]) -> dict[str, Any]:
        return self.node.call(doc=self.name, op=name, args=list(args))

    def updates(self) -> list[bytes]:
        return [unb64(u) for u in self.node.call(doc=self.name, cmd="updates")["updates"]]

    def apply(self, update: bytes) -> None:
        reply = self.node.call(doc=self.name, cmd="apply", update=b64(update))
        assert reply == {"ok": True}, reply

    def state(self) -> Any:
        return as_floats(self.node.call(doc=self.name, cmd="state")["state"])

    def sv(self) -> bytes:
        return unb64(self.node.call(doc=self.name, cmd="sv")["sv"])

    def encode(self, sv: bytes | None = None) -> bytes:
        return unb64(self.node.call(doc=self.name, cmd="encode", sv=None if sv is None else b64(sv))["update"])


_names = iter(range(10**9))


def fresh(node: Node) -> JsDoc:
    return JsDoc(node, f"doc{next(_names)}")


# ---- random concurrent streams ----------------------------------------------------------------

PY, JS = 0, 1

steps = st.lists(
    st.one_of(
        *[st.tuples(st.just("op"), st.tuples(st.sampled_from((PY, JS)), operations))] * 3,
        st.tuples(st.just("deliver"), st.tuples(st.integers(0, 10_000), st.booleans())),
        st.tuples(st.just("hold"), st.integers(0, 10_000)),
    ),
    min_size=10,
    max_size=60,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, seed=st.integers(0, 2**32))
def test_random_concurrent_edits_converge_between_pycrdt_and_yjs(js: Node, steps: list[tuple[str, Any]],
                                                                  seed: int) -> None:
    js.call(cmd="reset")
    py, jd = SyncDoc(), fresh(js)
    py_updates: list[bytes] = []
    py.on_local_update(py_updates.append)
    # In flight towards each side; "held" ones wait until the very end.
    flight: list[list[bytes]] = [[], []]
    held: list[list[bytes]] = [[], []]

    def deliver(target: int, update: bytes) -> None:
        if target == PY:
            py.apply_update(update)
        else:
            jd.apply(update)

    for kind, arg in steps:
        if kind == "op":
            side, (name, args) = arg
            if side == PY:
                getattr(py, name)(*args)
            else:
                reply = jd.op(name, args)
                assert reply == {"ok": True}, f"yjs refused {name}{args}: {reply}"
        elif kind == "deliver":
            at, duplicate = arg
            target = at % 2
            if flight[target]:
                pick = (at // 2) % len(flight[target])
                deliver(target, flight[target][pick] if duplicate else flight[target].pop(pick))
        elif kind == "hold":
            target = arg % 2
            if flight[target]:
                held[target].append(flight[target].pop((arg // 2) % len(flight[target])))
        flight[JS] += py_updates
        py_updates.clear()
        flight[PY] += jd.updates()
    rng = random.Random(seed)
    for target in (PY, JS):
        rest = flight[target] + held[target]
        rest += rng.sample(rest, len(rest) // 3)  # and some of them twice
        rng.shuffle(rest)
        for update in rest:
            deliver(target, update)
    assert jd.updates() == [] and py_updates == []  # applying remote updates is not a local change
    assert py.state() == jd.state()
    # Each side's whole state reads the same on the other side too.
    assert SyncDoc(state=jd.encode()).state() == py.state()


def test_diffs_by_state_vector_cross_over(js: Node) -> None:
    py, jd = SyncDoc(), fresh(js)
    py.open_tab("t1", "https://example.com/", "PC", 0, "pc")
    assert jd.op("add_bookmark", ("00000000000000b1", "https://example.com/", "phone", 5, "phone")) == {"ok": True}
    py_diff, js_diff = py.encode(jd.sv()), jd.encode(py.state_vector())
    jd.apply(py_diff)
    py.apply_update(js_diff)
    assert py.state() == jd.state()
    assert set(py.state()["tabs"]) == {"t1"} and set(py.state()["bookmarks"]) == {"00000000000000b1"}


# ---- the handshake between the two real wires ---------------------------------------------------

# A test-local host for the JS SyncLink: one JSON command per line, one reply line listing the
# sync.update messages the JS link sent meanwhile (data in base64).
JS_WIRE = r"""
import { createInterface } from 'node:readline';
import { SyncDoc } from './app/core/sync_doc.js';
import { SyncLink } from './app/core/sync_wire.js';
const sync = new SyncDoc();
let sent = [];
const link = new SyncLink({ doc: process.argv[1], sync, send: (m) => sent.push({ doc: m.doc, more: m.more,
  data: Buffer.from(m.data).toString('base64') }) });
createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  let reply = {};
  if (c.cmd === 'start') link.start();
  else if (c.cmd === 'receive') {
    const fault = link.receive({ t: 'sync.update', doc: c.doc, data: new Uint8Array(Buffer.from(c.data, 'base64')),
      more: c.more }, 0);
    reply.fault = fault;
  } else if (c.cmd === 'op') sync[c.method](...c.args);
  else if (c.cmd === 'flush') reply.count = link.flush(c.now);
  reply.state = sync.state();
  reply.sent = sent;
  sent = [];
  process.stdout.write(JSON.stringify(reply) + '\n');
});
"""

DOC_ID = "00112233445566aa"


class JsWire:
    def __init__(self) -> None:
        self.node = Node(["--input-type=module", "-e", JS_WIRE, DOC_ID])
        self.state: Any = None

    def call(self, **command: Any) -> list[SyncUpdate]:
        reply = self.node.call(**command)
        assert reply.get("fault") is None, reply
        self.state = as_floats(reply["state"])
        return [SyncUpdate(doc=m["doc"], data=unb64(m["data"]), more=m["more"]) for m in reply["sent"]]

    def receive(self, chunks: list[SyncUpdate]) -> list[SyncUpdate]:
        out = []
        for chunk in chunks:
            out += self.call(cmd="receive", doc=chunk.doc, data=b64(chunk.data), more=chunk.more)
        return out


@pytest.fixture
def js_wire() -> Iterator[JsWire]:
    _node_or_skip()
    wire = JsWire()
    try:
        yield wire
    finally:
        wire.node.close()


def _through_codec(chunks: list[SyncUpdate]) -> list[SyncUpdate]:
    out = []
    for chunk in chunks:
        assert len(chunk.data) <= MAX_SYNC_CHUNK
        decoded = decode_channel(encode(chunk))
        assert isinstance(decoded, SyncUpdate)
        out.append(decoded)
    return out


def test_the_y_protocols_handshake_runs_between_the_python_and_the_js_wire(js_wire: JsWire) -> None:
    py = SyncDoc()
    link = SyncLink(DOC_ID, py, 0.0)
    py.on_local_update(lambda update: link.local(update, 0.0))
    # Both sides hold something the other lacks, the PC enough for a step 2 of several chunks.
    for i in range(40):
        py.add_bookmark(f"{i:016x}", "https://example.com/" + "p" * 2000, "t" * 1000, i, "pc")
    js_wire.call(cmd="op", method="addHighlight", args=["0123456789abcdef", "https://example.com/", 3, 0, 4,
                                                        "text", "from the phone", "pink", "phone"])
    # Step 1 from each side, step 2 from the other.
    py_step1, js_step1 = _through_codec(link.start(0.0)), _through_codec(js_wire.call(cmd="start"))
    js_step2 = _through_codec(js_wire.receive(py_step1))
    py_step2 = _through_codec([reply for chunk in js_step1 for reply in link.receive(chunk, 0.0)])
    assert len(py_step2) > 1 and py_step2[-1].more is False
    for chunk in js_step2:
        assert link.receive(chunk, 0.0) == []
    assert js_wire.receive(py_step2) == []
    assert py.state() == js_wire.state
    assert len(py.state()["bookmarks"]) == 40 and "0123456789abcdef" in py.state()["highlights"]
    # Then live updates both ways, coalesced by each side's link.
    py.scroll("t5", 0.5, 7, 0.25, "pc")
    py.find("t5", "query", 0, 3, "pc")
    assert js_wire.receive(_through_codec(link.flush(1.0))) == []
    js_wire.call(cmd="op", method="renameBookmark", args=["0000000000000001", "renamed on the phone"])
    js_wire.call(cmd="op", method="setFollow", args=["phone_follows_pc", False])
    for chunk in _through_codec(js_wire.call(cmd="flush", now=1000)):
        assert link.receive(chunk, 1.0) == []
    assert py.state() == js_wire.state
    assert py.state()["bookmarks"]["0000000000000001"]["title"] == "renamed on the phone"
    assert py.state()["scroll"]["t5"]["block"] == 7.0


# ---- hostile entries ----------------------------------------------------------------------------


def test_both_sides_drop_the_same_hostile_entries(js: Node) -> None:
    py, jd = SyncDoc(), fresh(js)
    update = hostile_update()
    py.apply_update(update)
    jd.apply(update)
    assert py.state() == jd.state()
    assert py.state()["tabs"] and len(py.state()["tabs"]) == 1


def test_both_sides_refuse_the_same_bad_arguments(js: Node) -> None:
    for name, args in BAD_CALLS:
        if any(isinstance(a, float) and not math.isfinite(a) for a in args):
            continue  # NaN and infinity do not travel in JSON
        if any(isinstance(a, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in a) for a in args):
            continue  # nor do lone surrogates
        reply = fresh(js).op(name, args)
        assert reply["ok"] is False and reply["error"].startswith("bad_message"), (name, args, reply)
