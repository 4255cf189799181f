"""The native messaging host's pure parts: Chrome's framing and its caps, the origin check,
the extension id, and what `install-extension-host` writes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from peer_agent.cli import cli
from peer_agent.native_host import (
    EXTENSION_ID,
    HOST_NAME,
    MAX_FROM_BROWSER,
    MAX_TO_BROWSER,
    FrameReader,
    FrameReceived,
    FrameRefused,
    NativeHostError,
    as_line,
    encode_frame,
    frame_bytes,
    origin_allowed,
    parse_object,
)
from peer_agent.native_install import extension_id_from_key, install_host

EXTENSION_DIR = Path(__file__).resolve().parents[2] / "browser_client" / "extension"
ORIGIN = f"chrome-extension://{EXTENSION_ID}/"


def frame(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


# -- framing -------------------------------------------------------------------------------


def test_encode_frame_is_little_endian_length_and_compact_utf8_json():
    data = encode_frame({"type": "status", "title": "Café ☕"})
    payload = '{"type":"status","title":"Café ☕"}'.encode()
    assert data == len(payload).to_bytes(4, "little") + payload


def test_frames_to_the_browser_stop_at_chrome_s_one_mebibyte():
    assert len(frame_bytes(b"x" * MAX_TO_BROWSER)) == MAX_TO_BROWSER + 4
    with pytest.raises(NativeHostError) as caught:
        frame_bytes(b"x" * (MAX_TO_BROWSER + 1))
    assert caught.value.code == "frame_too_large"
    with pytest.raises(NativeHostError):
        encode_frame({"page": "x" * MAX_TO_BROWSER})


@given(payloads=st.lists(st.binary(max_size=300), max_size=8), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_reader_finds_the_same_frames_however_the_stream_is_cut(payloads, cuts):
    stream = b"".join(frame(p) for p in payloads)
    reader = FrameReader()
    events = []
    start = 0
    for cut in sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]:
        events += reader.feed(stream[start:cut])
        start = cut
    assert events == [FrameReceived(p) for p in payloads]
    assert reader.idle


def test_a_frame_over_the_cap_is_refused_and_skipped_without_losing_step():
    reader = FrameReader(cap=1000)
    big = frame(b"y" * 1001)
    events = reader.feed(big[:10])
    assert events == [FrameRefused(1001)]
    assert not reader.idle  # still skipping its body
    events = reader.feed(big[10:] + frame(b'{"type":"ping"}') + frame(b"z" * 1000))
    assert events == [FrameReceived(b'{"type":"ping"}'), FrameReceived(b"z" * 1000)]
    assert reader.idle


def test_the_browser_cap_is_eight_mebibytes():
    reader = FrameReader()
    assert reader.feed(struct.pack("<I", MAX_FROM_BROWSER + 1)) == [FrameRefused(MAX_FROM_BROWSER + 1)]
    # A length of 2**32 - 1 is refused from the header alone: nothing is buffered for it.
    assert FrameReader().feed(b"\xff\xff\xff\xff") == [FrameRefused(2**32 - 1)]


def test_a_truncated_frame_is_not_idle():
    reader = FrameReader()
    assert reader.feed(frame(b'{"a":1}')[:-1]) == []
    assert not reader.idle


@pytest.mark.parametrize(("payload", "code"), [
    (b"", "bad_json"),
    (b"{nope", "bad_json"),
    (b"\xff\xfe{}", "bad_json"),
    (b"[1, 2]", "bad_message"),
    (b'"text"', "bad_message"),
    (b"null", "bad_message"),
])
def test_only_json_objects_pass(payload, code):
    with pytest.raises(NativeHostError) as caught:
        parse_object(payload)
    assert caught.value.code == code


def test_lines_to_the_agent_are_the_browser_s_bytes_or_one_compact_line():
    compact = b'{"type":"beam","request_id":3}'
    assert as_line(compact, parse_object(compact)) == compact + b"\n"
    pretty = b'{\n  "type": "beam",\r\n  "title": "a\\nb"\n}'
    line = as_line(pretty, parse_object(pretty))
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line) == {"type": "beam", "title": "a\nb"}


# -- origin and extension id --------------------------------------------------------------


@pytest.mark.parametrize(("origin", "allowed"), [
    (ORIGIN, True),
    (f"chrome-extension://{EXTENSION_ID}", False),  # Chrome always sends the trailing slash
    (f"chrome-extension://{EXTENSION_ID}/../", False),
    (f"chrome-extension://{'a' * 32}/", False),
    (f"https://{EXTENSION_ID}/", False),
    ("", False),
    (None, False),
])
def test_only_the_installed_extension_origins_pass(origin, allowed):
    assert origin_allowed(origin, [EXTENSION_ID]) is allowed


def test_the_extension_id_is_the_one_chrome_derives_from_the_manifest_key():
    manifest = json.loads((EXTENSION_DIR / "manifest.json").read_text())
    assert extension_id_from_key(manifest["key"]) == EXTENSION_ID


def test_the_manifest_asks_for_no_host_access():
    manifest = json.loads((EXTENSION_DIR / "manifest.json").read_text())
    assert manifest["manifest_version"] == 3
    assert set(manifest["permissions"]) == {"activeTab", "scripting", "nativeMessaging", "tabs",
                                            # page sync: "Mirror" menu, bookmark folder, tab map
                                            "contextMenus", "bookmarks", "storage"}
    # Host access only when the user grants it for mirroring (asked on the "Mirror" click).
    assert "host_permissions" not in manifest and "content_scripts" not in manifest
    assert manifest["optional_host_permissions"] == ["http://*/*", "https://*/*"]
    assert manifest["background"] == {"service_worker": "service_worker.js", "type": "module"}
    for icon in manifest["icons"].values():
        assert (EXTENSION_DIR / icon).is_file()


# -- installation -------------------------------------------------------------------------


def test_install_writes_a_launcher_and_one_manifest_per_browser(tmp_path):
    home = tmp_path / "my home's \"config\" $dir"  # the launcher must quote it
    browsers = [tmp_path / "chromium", tmp_path / "chrome"]
    echo = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
    written = install_host(browsers, [EXTENSION_ID, "b" * 32], home, echo)

    launcher = home / "extension-host"
    assert written == [launcher, *(b / "NativeMessagingHosts" / f"{HOST_NAME}.json" for b in browsers)]
    assert launcher.stat().st_mode & 0o777 == 0o755
    assert home.stat().st_mode & 0o777 == 0o700
    for path in written[1:]:
        manifest = json.loads(path.read_text())
        assert manifest == {
            "name": HOST_NAME,
            "description": manifest["description"],
            "path": str(launcher),
            "type": "stdio",
            "allowed_origins": [ORIGIN, f"chrome-extension://{'b' * 32}/"],
        }
    # Run it as Chrome does: the launcher adds the config dir and the ids, and passes the origin on.
    done = subprocess.run([str(launcher), ORIGIN], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["--home", str(home), "extension-host", "--extension-id", EXTENSION_ID,
                                       "--extension-id", "b" * 32, ORIGIN]


def test_install_refuses_what_is_not_an_extension_id(tmp_path):
    for bad in ("short", "q" * 32, EXTENSION_ID.upper(), f"{EXTENSION_ID}/"):
        with pytest.raises(NativeHostError):
            install_host([tmp_path / "b"], [bad], tmp_path / "home", ["peerbeam"])
    assert not (tmp_path / "b").exists()


def test_install_command_defaults_to_this_extension_and_prints_what_it_wrote(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(tmp_path / "home"), "--json", "install-extension-host",
                                 "--browser-dir", str(tmp_path / "profile")])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    paths = [Path(e["path"]) for e in events if e["event"] == "installed"]
    assert paths == [tmp_path / "home" / "extension-host",
                     tmp_path / "profile" / "NativeMessagingHosts" / f"{HOST_NAME}.json"]
    manifest = json.loads(paths[1].read_text())
    assert manifest["allowed_origins"] == [ORIGIN]
    script = paths[0].read_text()
    assert "extension-host --extension-id " + EXTENSION_ID in script
    assert os.access(paths[0], os.X_OK)

    bad = runner.invoke(cli, ["--home", str(tmp_path / "home"), "--json", "install-extension-host",
                              "--browser-dir", str(tmp_path / "p2"), "--extension-id", "nope"])
    assert bad.exit_code == 1
    assert json.loads(bad.output.splitlines()[-1])["event"] == "error"
