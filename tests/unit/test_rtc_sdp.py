"""SDP fingerprint policy and path classification (pure functions of peer_agent)."""

from __future__ import annotations

import pytest

from peer_agent.path import classify
from peer_agent.rtc import BadSdp, keep_sha256_fingerprint, remote_fingerprint

FP256 = ":".join(["AB"] * 32)
FP384 = ":".join(["CD"] * 48)
SDP = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 DTLS/SCTP 5000\r\n"
    f"a=fingerprint:sha-256 {FP256}\r\na=fingerprint:sha-384 {FP384}\r\n"
    f"a=fingerprint:sha-512 {':'.join(['EF'] * 64)}\r\na=setup:actpass\r\n"
)


def test_outgoing_sdp_keeps_exactly_the_sha256_fingerprint():
    sdp, fp = keep_sha256_fingerprint(SDP)
    assert fp == FP256
    assert sdp.count("a=fingerprint:") == 1 and "sha-384" not in sdp and "a=setup:actpass" in sdp
    assert remote_fingerprint(sdp) == FP256
    # Nothing but CRLF-terminated, non-empty lines: Chromium refuses an SDP with an empty line.
    assert sdp.endswith("\r\n") and all(line and "\n" not in line for line in sdp[:-2].split("\r\n"))
    assert sdp == SDP.replace(f"a=fingerprint:sha-384 {FP384}\r\n", "").replace(
        f"a=fingerprint:sha-512 {':'.join(['EF'] * 64)}\r\n", "")


@pytest.mark.parametrize(
    "sdp",
    [
        SDP,  # several algorithms
        f"a=fingerprint:sha-1 {':'.join(['AB'] * 20)}\r\n",  # weak algorithm only
        f"a=fingerprint:sha-256 {FP256}\r\na=fingerprint:sha-256 {':'.join(['01'] * 32)}\r\n",  # two certs
        "v=0\r\n",  # none
        "a=fingerprint:sha-256 ZZ:ZZ\r\n",  # malformed
    ],
)
def test_remote_sdp_must_carry_one_sha256_fingerprint(sdp):
    with pytest.raises(BadSdp):
        remote_fingerprint(sdp)


@pytest.mark.parametrize(
    "local,remote,host,kind",
    [
        ("host", "host", "192.168.1.20", "lan"),
        ("host", "host", "192.0.2.2", "lan"),
        ("host", "prflx", "10.0.0.5", "lan"),
        ("host", "host", "8f1c-xyz.local", "lan"),
        ("srflx", "srflx", "198.51.100.7", "direct"),
        ("host", "srflx", "203.0.113.9", "direct"),
        ("relay", "host", "192.168.1.20", "relay"),
        ("host", "relay", "203.0.113.9", "relay"),
    ],
)
def test_path_classification(local, remote, host, kind):
    assert classify(local, remote, host) == kind
