"""peer_agent/path.py reads how aioice reaches its TURN server: checked on real aioice objects,
so an aioice upgrade that renames the attributes fails here and not silently in the UI."""

from __future__ import annotations

import pytest
from aioice import Connection

from peer_agent.path import relay_transport


@pytest.mark.parametrize(("ssl", "transport", "expected"), [
    (False, "udp", "udp"),
    (False, "tcp", "tcp"),
    (True, "tcp", "tls"),
])
def test_relay_transport_comes_from_the_connection_aiortc_configured(ssl, transport, expected):
    # Constructing a Connection opens no socket (gathering does).
    connection = Connection(ice_controlling=True, turn_server=("203.0.113.1", 3478),
                            turn_username="u", turn_password="p", turn_ssl=ssl,
                            turn_transport=transport)
    assert relay_transport(connection) == expected
