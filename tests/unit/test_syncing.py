"""The agent's check of the extension's tab list (peer_agent/syncing.py): the document's own
shapes decide, so a tab the document would refuse is left out instead of failing the start."""

from __future__ import annotations

from peer_agent.syncing import _tabs_from


def test_only_tabs_the_document_accepts_are_kept():
    raw = [
        {"key": "t12", "url": "https://a.example/", "title": "A", "order": 0},
        {"key": "0123456789abcdef", "url": "http://b.example/x", "title": "", "order": 1.5},
        {"key": "abc", "url": "https://c.example/", "title": "bad key", "order": 2},  # not t<n> nor 16 hex
        {"key": "t13", "url": "javascript:alert(1)", "title": "bad url", "order": 3},
        {"key": "t14", "url": "https://d.example/", "title": "bad order", "order": float("nan")},
        {"key": "t15", "url": "https://e.example/", "title": "bool order", "order": True},
        "junk",
    ]
    assert _tabs_from(raw) == [("t12", "https://a.example/", "A", 0.0),
                               ("0123456789abcdef", "http://b.example/x", "http://b.example/x", 1.5)]
    assert _tabs_from({"not": "a list"}) == []
