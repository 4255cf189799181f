"""tests/vectors/session.json is what the Python code produces today.

The browser's protocol core is held byte-equal to that file (browser_client/test/), so the file
must not drift from peer_agent.handshake, crypto and the schema: this regenerates it in memory
and compares. Building it also runs the generator's own checks (both sides of each recorded
exchange agree on hash, chaining key and code; every sealed signal is received intact).
"""

from __future__ import annotations

import json

from tests.vectors.make_session_vectors import PATH, build, render


def test_committed_session_vectors_match_the_python_code() -> None:
    fresh = build()
    committed = json.loads(PATH.read_text())
    stale = sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k))
    assert not stale, f"session.json is stale in {stale}: run .venv/bin/python {PATH.parent}/make_session_vectors.py"
    assert PATH.read_text() == render(fresh)


def test_the_recorded_exchanges_are_fresh_sessions() -> None:
    # Fixed ephemerals must still give two different handshakes: pairing and reconnect share
    # nothing but the identities.
    doc = json.loads(PATH.read_text())
    pairing, reconnect = doc["pairing"], doc["reconnect"]
    assert pairing["handshake_hash"] != reconnect["handshake_hash"]
    assert reconnect["pair_secret_in"] == pairing["pair_secret"]
    for exchange in (pairing, reconnect):
        assert {s["from"] for s in exchange["sealed"]} == {"initiator", "responder"}
