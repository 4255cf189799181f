"""A hostile signaling server for tests: a WebSocket proxy in front of the real one that
tampers with the envelopes it routes, as a compromised server could.

    python mitm_server.py --listen HOST:PORT --upstream http://HOST:PORT --mode MODE

Modes:
  swap-ephemeral  replace the Noise ephemeral key in the first handshake message with its own
  flip-response   flip one byte of the responder's handshake answer
  flip-transport  flip one byte of the first encrypted peer signal
Prints {"event": "listening"} and one {"event": "tampered", ...} per change, as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys

import aiohttp
from aiohttp import web


def say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Tamper:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.done = False
        self.seen_first = False

    def __call__(self, text: str) -> str:
        if self.done:
            return text
        msg = json.loads(text)
        if msg.get("t") != "relay":
            return text
        data = bytearray(base64.b64decode(msg["data"]))
        kind = data[0]
        if self.mode == "swap-ephemeral" and kind == 1:
            data[1:33] = os.urandom(32)
        elif self.mode == "flip-response" and kind == 1 and self.seen_first:
            data[-5] ^= 0x01
        elif self.mode == "flip-transport" and kind == 2:
            data[10] ^= 0x01
        else:
            if kind == 1:
                self.seen_first = True
            return text
        self.done = True
        say("tampered", mode=self.mode, kind=kind)
        msg["data"] = base64.b64encode(bytes(data)).decode()
        return json.dumps(msg)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--mode", required=True)
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    tamper = Tamper(args.mode)
    upstream = args.upstream.replace("http://", "ws://") + "/v1/ws"

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with aiohttp.ClientSession() as session, session.ws_connect(upstream) as server:

            async def client_to_server() -> None:
                async for msg in client:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await server.send_str(tamper(msg.data))
                await server.close()

            async def server_to_client() -> None:
                async for msg in server:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await client.send_str(msg.data)  # tamper once, on the way in only
                await client.close()

            await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)
        return client

    app = web.Application()
    app.router.add_get("/v1/ws", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    say("listening", url=f"http://{host}:{port}")
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
