"""The phone web app (issue 4): Chromium <-> agent throughput next to a bare browser <-> aiortc
data channel, and time from the Pair tap to the channel open.

Run as root from the repository root:

    .venv/bin/python bench/phone.py [--size-mb 100] [--runs 3] [--taps 5] [--json]

It builds the lab of tests/integration/test_phone_app.py ("pc" 198.51.100.1 with `peerbeam
signal` and `peerbeam agent --auto-accept`; "phone" 198.51.100.2 with Debian's Chromium at phone
size, driven by tests/integration/phone_driver.py) and always removes it. Plain HTTP on the
LAN, as a phone on the PC's Wi-Fi would open it. All in one invocation, so the rows compare:

* tap -> open, `--taps` times: the page at "Pair with Desk PC?" (peek done), from the tap on
  Pair (pointerdown, page clock) to the connected screen (Noise NK, the agent's accept, SDP in
  Noise, ICE, DTLS, SCTP, the binding MAC both ways). Then "Forget" and the next fresh QR;
  the last pairing stays for the transfers.
* phone -> PC: a `--size-mb` MB (10^6 bytes) file picked in the file input; page clock from the
  pick to the row's "completed" (the PC verified the sha-256 and said so), and from the first
  "transferring" to "completed" (the bytes only: the page's hashing and the offer left out).
* PC -> phone: `peerbeam send FILE`; page clock from the row appearing to "completed" (every
  byte stored in IndexedDB and the sha-256 checked); the agent's own `sent_file.seconds` too.
* bare: the same Chromium page, a fresh RTCPeerConnection to bench/phone_bare_peer.py (aiortc)
  in "pc", SDP relayed by this script: time from `new RTCPeerConnection` to the channel open
  (`--taps` times; includes this script's relay of the SDP through Playwright), then
  `--runs` x `--size-mb` MB each way in 64 KiB messages with the same flow control, no hashing,
  nothing stored, timed on the page until the last byte (or the peer's "got").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.harness import run_in_lab
from tests.integration.test_pairing import start_agent  # noqa: E402
from tests.integration.test_phone_app import PORT, Phone, start_phone  # noqa: E402
from tests.lab import Lab  # noqa: E402

TIMES = """(() => {
  // First time each (file name, row state) was seen, and when a file was picked (capture
  // phase: the app's own change handler empties the input).
  window.__ts = {};
  const seen = (name, what) => { (window.__ts[name] ??= {})[what] ??= performance.now(); };
  document.addEventListener('change', (e) => { for (const f of e.target.files ?? []) seen(f.name, 'picked'); }, true);
  new MutationObserver(() => {
    for (const row of document.querySelectorAll('#transfers li')) if (row.dataset.name) seen(row.dataset.name, row.dataset.state);
  }).observe(document.getElementById('transfers'), { subtree: true, childList: true, attributes: true });
  return true;
})()"""

TAP_CLOCK = """(() => {
  window.__tap = {};
  document.addEventListener('pointerdown', () => { window.__tap.down ??= performance.now(); }, true);
  new MutationObserver(() => {
    if (document.body.dataset.screen === 'connected') window.__tap.open ??= performance.now();
  }).observe(document.body, { attributes: true });
  return true;
})()"""

BARE_OFFER = """(async () => {
  window.__bare?.pc.close();
  const t0 = performance.now();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const dc = pc.createDataChannel('bench', { ordered: true });
  dc.binaryType = 'arraybuffer';
  const opened = new Promise((ok) => { dc.onopen = () => ok(performance.now()); });
  window.__bare = { pc, dc, t0, opened };
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((ok) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && ok()));
  }
  return pc.localDescription.sdp;
})()"""

BARE_ANSWER = """(async () => {
  const b = window.__bare;
  await b.pc.setRemoteDescription({ type: 'answer', sdp: %s });
  return (await b.opened) - b.t0;
})()"""

BARE_UP = """(async () => {
  const { dc } = window.__bare;
  const size = %d;
  const chunk = new Uint8Array(65536);
  crypto.getRandomValues(chunk.subarray(0, 65536));
  dc.bufferedAmountLowThreshold = 256 * 1024;
  const got = new Promise((ok) => { dc.onmessage = (e) => { if (typeof e.data === 'string') ok(performance.now()); }; });
  dc.send(`recv ${size}`);
  const t0 = performance.now();
  for (let left = size; left > 0; left -= chunk.length) {
    if (dc.bufferedAmount > 1024 * 1024) await new Promise((ok) => { dc.onbufferedamountlow = ok; });
    dc.send(left >= chunk.length ? chunk : chunk.subarray(0, left));
  }
  return (await got) - t0;
})()"""

BARE_DOWN = """(async () => {
  const { dc } = window.__bare;
  const size = %d;
  let count = 0;
  const done = new Promise((ok) => {
    dc.onmessage = (e) => { count += e.data.byteLength; if (count >= size) ok(performance.now()); };
  });
  const t0 = performance.now();
  dc.send(`send ${size}`);
  return (await done) - t0;
})()"""


def say(line: str, quiet: bool) -> None:
    print(line, file=sys.stderr if quiet else sys.stdout, flush=True)


async def bench(lab: Lab, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = args.size_mb * 1_000_000
    pc, phone_host = lab.lan_pair()
    server = await pc.peerbeam(["--json", "signal", "--host", pc.address, "--port", str(PORT)], home=tmp / "srv")
    origin = (await server.expect("server"))["url"]
    downloads = tmp / "pc-dl"
    agent, url = await start_agent(pc, tmp / "pc", origin, "--downloads", str(downloads))
    phone: Phone = await start_phone(phone_host, tmp)
    report: dict[str, Any] = {"size_mb": args.size_mb, "runs": args.runs, "taps": args.taps}

    # Tap -> open.
    taps = []
    for n in range(args.taps):
        await phone.do("goto", url=url)
        await phone.screen("confirm")
        await phone.eval(TAP_CLOCK)
        await phone.tap("#pair")
        await phone.screen("connected", timeout=60)
        clock = await phone.eval("window.__tap")
        taps.append(clock["open"] - clock["down"])
        await agent.expect("connected", name="Android phone", timeout=30)
        say(f"tap -> open {n + 1}: {taps[-1]:.0f} ms", args.json)
        if n < args.taps - 1:
            fresh = await agent.expect("qr", timeout=30)  # the agent shows a new code after a pairing
            await phone.tap("#forget")
            await phone.screen("forgotten")
            await agent.expect("unpaired", timeout=30)
            url = fresh["url"]
    report["tap_to_open_ms"] = taps

    # Phone -> PC, then PC -> phone, through the app.
    await phone.eval(TIMES)
    up, up_bytes_only, down, down_agent = [], [], [], []
    for n in range(args.runs):
        src = tmp / f"up-{n}.bin"
        with src.open("wb") as f:
            for _ in range(size // 1_000_000):
                f.write(os.urandom(1_000_000))
        await phone.do("files", selector="#file-input", paths=[str(src)])
        got = await agent.expect("received_file", file=src.name, timeout=600)
        await phone.do("wait", js=f"window.__ts['{src.name}']?.completed", timeout=600)
        ts = await phone.eval(f"window.__ts['{src.name}']")
        up.append(size / (ts["completed"] - ts["picked"]) / 1000)
        up_bytes_only.append(size / (ts["completed"] - ts["transferring"]) / 1000)
        Path(got["path"]).unlink()
        src.unlink()
        say(f"phone -> PC {n + 1}: {up[-1]:.1f} MB/s pick to verified, {up_bytes_only[-1]:.1f} MB/s bytes", args.json)
    for n in range(args.runs):
        src = tmp / f"down-{n}.bin"
        with src.open("wb") as f:
            for _ in range(size // 1_000_000):
                f.write(os.urandom(1_000_000))
        sender = await pc.peerbeam(["--json", "send", str(src), "--to", "Android phone"], home=tmp / "pc")
        sent = await sender.expect("sent_file", timeout=600)
        await phone.do("wait", js=f"window.__ts['{src.name}']?.completed", timeout=600)
        ts = await phone.eval(f"window.__ts['{src.name}']")
        first = min(v for k, v in ts.items() if k != "completed")
        down.append(size / (ts["completed"] - first) / 1000)
        down_agent.append(size / sent["seconds"] / 1e6)
        await sender.wait(timeout=30)
        src.unlink()
        say(f"PC -> phone {n + 1}: {down[-1]:.1f} MB/s offer to stored+verified (agent: {down_agent[-1]:.1f})", args.json)
    report["app_up_mb_s"], report["app_up_bytes_only_mb_s"] = up, up_bytes_only
    report["app_down_mb_s"], report["app_down_agent_mb_s"] = down, down_agent

    # The bare baseline, in the same page.
    peer = await pc.spawn([sys.executable, str(REPO_ROOT / "bench" / "phone_bare_peer.py")], cwd=REPO_ROOT)
    await peer.expect("ready")
    opens = []
    for _ in range(args.taps):
        offer = await phone.eval(BARE_OFFER)
        await peer.write_line(json.dumps({"offer": offer}))
        answer = await peer.expect("answer", timeout=30)
        opens.append(await phone.eval(BARE_ANSWER % json.dumps(answer["sdp"])))
        say(f"bare open: {opens[-1]:.0f} ms", args.json)
    bare_up: list[float] = []
    bare_down: list[float] = []
    for _ in range(args.runs):
        ms = (await phone.do("eval", js=BARE_UP % size, timeout=600))["value"]
        bare_up.append(size / ms / 1000)
        ms = (await phone.do("eval", js=BARE_DOWN % size, timeout=600))["value"]
        bare_down.append(size / ms / 1000)
        say(f"bare: up {bare_up[-1]:.1f} MB/s, down {bare_down[-1]:.1f} MB/s", args.json)
    report["bare_open_ms"], report["bare_up_mb_s"], report["bare_down_mb_s"] = opens, bare_up, bare_down
    report["medians"] = {k: round(statistics.median(v), 1) for k, v in report.items() if isinstance(v, list)}
    return report


def print_table(report: dict[str, Any]) -> None:
    m = report["medians"]
    print(f"\n{report['size_mb']} MB, median of {report['runs']}; connects median of {report['taps']}")
    rows = [
        ("phone -> PC, app (pick to PC verified)", m["app_up_mb_s"], "MB/s"),
        ("phone -> PC, app (bytes only)", m["app_up_bytes_only_mb_s"], "MB/s"),
        ("phone -> PC, bare data channel", m["bare_up_mb_s"], "MB/s"),
        ("PC -> phone, app (offer to stored + verified)", m["app_down_mb_s"], "MB/s"),
        ("PC -> phone, app (agent's sent_file.seconds)", m["app_down_agent_mb_s"], "MB/s"),
        ("PC -> phone, bare data channel", m["bare_down_mb_s"], "MB/s"),
        ("tap on Pair -> channel open, app", m["tap_to_open_ms"], "ms"),
        ("new RTCPeerConnection -> open, bare", m["bare_open_ms"], "ms"),
    ]
    for label, value, unit in rows:
        print(f"  {label:<48} {value:>8.1f} {unit}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--taps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/phone.py needs root (it creates network namespaces).", file=sys.stderr)
        return 2
    report = run_in_lab("pb-bench-phone-", lambda lab, tmp: bench(lab, tmp, args))
    if report is None:
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
