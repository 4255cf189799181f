"""What a person sees for a file transfer in the terminal: sentences and a live progress bar."""

import io

from rich.console import Console

from peer_agent.report import ConsoleReporter


def test_a_transfer_reads_as_sentences_around_a_progress_bar():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    reporter = ConsoleReporter(console)
    common = {"name": "Test Phone", "id": "0123456789abcdef", "file": "holiday.jpg"}
    reporter.emit("offered", size=20_000_000, sha256="ab" * 32, **common)
    reporter.emit("accepted", size=20_000_000, offset=0, **common)
    for done in (5_000_000, 10_000_000, 20_000_000):
        reporter.emit("progress", direction="out", done=done, size=20_000_000, rate=8_000_000, eta=1.0, **common)
    reporter.emit("sent_file", size=20_000_000, sha256="ab" * 32, seconds=2.5, resumed_from=0, **common)
    text = out.getvalue()
    assert "Offering holiday.jpg (20.0 MB) to Test Phone" in text
    assert "→ holiday.jpg to Test Phone" in text  # the bar's label
    assert "Sent holiday.jpg to Test Phone (20.0 MB in 2.5 s" in text
    assert not reporter._bars._tasks  # the bar is gone once the transfer ended


def test_a_cancelled_transfer_says_who_and_why():
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, force_terminal=True, width=100, color_system=None))
    common = {"name": "Desk PC", "id": "0123456789abcdef", "file": "big.bin"}
    reporter.emit("progress", direction="in", done=1, size=10, rate=None, eta=None, **common)
    reporter.emit("transfer_cancelled", by="peer", code=None, message="Desk PC cancelled the transfer.", **common)
    assert "big.bin cancelled: Desk PC cancelled the transfer." in out.getvalue()


def test_the_path_carrying_a_transfer_is_shown():
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, force_terminal=True, width=120, color_system=None))
    common = {"name": "Desk PC", "id": "0123456789abcdef", "file": "big.bin"}
    reporter.emit("connected", name="Desk PC", path={"kind": "lan", "transport": "udp", "local": "a", "remote": "b",
                                                    "rendezvous": "lan", "files_via": "LAN fast path"})
    reporter.emit("progress", direction="in", done=1, size=10, rate=None, eta=None, via="LAN fast path", **common)
    reporter.emit("received_file", size=10, sha256="ab" * 32, seconds=0.1, path="/tmp/big.bin",
                  via="LAN fast path", **common)
    text = out.getvalue()
    assert "files over the LAN fast path" in text  # in the connection line
    assert "← big.bin from Desk PC (LAN fast path)" in text  # the progress bar's label
    assert "sha-256 checked, over the LAN fast path" in text
