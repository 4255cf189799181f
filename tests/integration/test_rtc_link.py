"""RtcLink between two real aiortc peers in a lab namespace."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.lab import REPO_ROOT

pytestmark = pytest.mark.netns

HERE = Path(__file__).parent


async def test_a_message_before_the_session_handler_is_kept_in_order(lan_pair):
    # The peer's first message may arrive between binding and the session attaching its
    # handler (bench/pairing.py lost one that way): it must be handed over, before later ones.
    pc, _ = lan_pair
    proc = await pc.spawn([sys.executable, str(HERE / "rtc_early_message.py")], cwd=REPO_ROOT)
    got = await proc.expect("received", timeout=40)
    assert got["ids"] == ["early", "late"]
    assert await proc.wait(timeout=20) == 0


async def test_binary_frames_stream_with_flow_control(lan_pair):
    """20 MB of frames: all arrive in order with the right hash, and the sender's buffer never
    grows past the high mark plus one frame (it waits for bufferedamountlow)."""
    from peer_agent.rtc import BUFFER_HIGH

    pc, _ = lan_pair
    proc = await pc.spawn([sys.executable, str(HERE / "rtc_frames.py")], cwd=REPO_ROOT)
    got = await proc.expect("streamed", timeout=120)
    assert got["bytes"] == 20 * 1024 * 1024 and got["sha_ok"] and got["in_order"]
    assert got["max_buffered"] <= BUFFER_HIGH + 64 * 1024
    assert got["waits"] > 0  # flow control really engaged
    assert await proc.wait(timeout=20) == 0
