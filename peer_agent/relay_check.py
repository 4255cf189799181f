"""Why no relay helped: ask the TURN server directly, and say it in a sentence.

aioice swallows the error when a TURN allocation fails while gathering candidates: the
connection simply has no relayed candidate, and ICE fails later with no reason given. When a
connection attempt fails, this module repeats the Allocate request of RFC 8656 §7.1 with the
same server, transport and credentials aiortc used (``aiortc.rtcicetransport.connection_kwargs``
picks them, so this cannot disagree with what aiortc tried) and turns the outcome into a
verdict: no relay configured, credentials refused (401: wrong secret, or expired), relay
unreachable over this transport, or relay fine — then the other device is the problem.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, Literal

from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc import RTCIceServer
from aiortc.rtcicetransport import connection_kwargs

from signaling.schema import IceServer

logger = logging.getLogger(__name__)

Outcome = Literal["none", "refused", "unreachable", "works"]


@dataclass(frozen=True)
class RelayVerdict:
    outcome: Outcome
    relay: str = ""  # "turn:host:port over udp" — no credentials
    detail: str = ""  # e.g. "401 Unauthorized", "timed out"

    def sentence(self) -> str:
        """What failed, for the person reading the error."""
        if self.outcome == "none":
            return ("No relay (TURN server) is configured: put both devices on the same network, or ask "
                    "whoever runs the signaling server to add one (peerbeam signal --turn-secret ... "
                    "--turn-url ...).")
        if self.outcome == "refused":
            return (f"The relay {self.relay} refused the credentials ({self.detail}): the signaling server "
                    "and the relay must share the same secret, and both clocks must be right — "
                    "credentials expire.")
        if self.outcome == "unreachable":
            return (f"The relay {self.relay} could not be reached ({self.detail}): this network may "
                    "block it.")
        return (f"The relay {self.relay} works from this device, so the other device could not use "
                "it: check its network.")


def _describe(kwargs: dict[str, Any]) -> str:
    host, port = kwargs["turn_server"]
    scheme = "turns" if kwargs.get("turn_ssl") else "turn"
    transport = "tls" if kwargs.get("turn_ssl") else str(kwargs.get("turn_transport", "udp"))
    return f"{scheme}:{host}:{port} over {transport}"


async def check_relay(servers: list[IceServer], timeout: float = 5.0) -> RelayVerdict:
    """Try one allocation on the TURN server aiortc would use; release it at once."""
    kwargs = connection_kwargs([RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                for s in servers])
    if "turn_server" not in kwargs:
        return RelayVerdict("none")
    relay = _describe(kwargs)
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=kwargs["turn_server"],
                username=kwargs["turn_username"],
                password=kwargs["turn_password"],
                ssl=kwargs["turn_ssl"],
                transport=kwargs["turn_transport"],
            )
    except stun.TransactionFailed as exc:
        code, reason = exc.response.attributes.get("ERROR-CODE", (0, "error"))
        return RelayVerdict("refused", relay, f"{code} {reason}".strip())
    except (TimeoutError, stun.TransactionTimeout):
        return RelayVerdict("unreachable", relay, f"no answer within {timeout:g} s")
    except ssl.SSLError as exc:
        return RelayVerdict("unreachable", relay, f"TLS failed: {exc.reason or exc}")
    except (OSError, ConnectionError) as exc:
        return RelayVerdict("unreachable", relay, exc.strerror or type(exc).__name__)
    transport.close()
    return RelayVerdict("works", relay)
