"""The phone app's message tables (browser_client/app/core/channel.js, wire.js) are the
schema's own: each field of each message, its kind, bounds, pattern and default, as msgspec
describes signaling/schema.py. One schema, two languages, no drift (DESIGN "One message
schema ... checked against it by a test"). The byte-level behaviour of the JS codec is tested
by node (browser_client/test/channel.test.js); PeerSignal has its own vector (session.json).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest

from signaling.schema import ChannelMessage, ClientMessage, ErrorCode, IceServer, PageText, PageThumb, ServerMessage

CLIENT = Path(__file__).parents[2] / "browser_client"
DUMP = """
import { CHANNEL_SCHEMA, ERROR_CODES, LATER_TAGS } from './app/core/channel.js';
import { CLIENT_SCHEMA, SERVER_SCHEMA } from './app/core/wire.js';
console.log(JSON.stringify({ CHANNEL_SCHEMA, ERROR_CODES, LATER_TAGS, CLIENT_SCHEMA, SERVER_SCHEMA }));
"""


@pytest.fixture(scope="module")
def tables() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: scripts/bootstrap installs nodejs and npm")
    done = subprocess.run([node, "--input-type=module", "-e", DUMP], cwd=CLIENT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def field_spec(field: msgspec.inspect.Field) -> dict[str, Any]:
    """One field as the JS tables write it (codec.js FieldSpec)."""
    spec: dict[str, Any] = {"name": field.encode_name, "required": field.required}
    kind = field.type
    if isinstance(kind, msgspec.inspect.UnionType):
        (kind, none) = kind.types
        assert isinstance(none, msgspec.inspect.NoneType)
        spec["nullable"] = True
    if isinstance(kind, msgspec.inspect.StrType):
        spec.update(kind="str", min_length=kind.min_length, max_length=kind.max_length, pattern=kind.pattern)
    elif isinstance(kind, msgspec.inspect.BytesType):
        spec.update(kind="bytes", min_length=kind.min_length, max_length=kind.max_length)
    elif isinstance(kind, msgspec.inspect.LiteralType):
        spec.update(kind="literal", values=list(kind.values))
    elif isinstance(kind, msgspec.inspect.EnumType):
        spec.update(kind="literal", values=[member.value for member in kind.cls])
    elif isinstance(kind, msgspec.inspect.IntType):
        assert (kind.gt, kind.lt, kind.multiple_of) == (None, None, None)
        spec.update(kind="int", ge=kind.ge, le=kind.le)
    elif isinstance(kind, msgspec.inspect.BoolType):
        spec["kind"] = "bool"
    elif isinstance(kind, msgspec.inspect.StructType) and kind.cls is PageText:
        # page.push text: one untagged record, described field by field.
        spec.update(kind="record", item=[field_spec(f) for f in kind.fields])
    elif isinstance(kind, msgspec.inspect.FloatType):
        assert (kind.gt, kind.ge, kind.lt, kind.le) == (None,) * 4
        spec["kind"] = "float"
    elif (isinstance(kind, msgspec.inspect.ListType) and isinstance(kind.item_type, msgspec.inspect.StructType)
          and kind.item_type.cls is IceServer):
        spec["kind"] = "ice_servers"
    elif (isinstance(kind, msgspec.inspect.ListType) and isinstance(kind.item_type, msgspec.inspect.StructType)
          and kind.item_type.cls is PageThumb):
        # page.push thumbs: a list of untagged records, each described field by field too.
        spec.update(kind="records", min_length=kind.min_length, max_length=kind.max_length,
                    item=[field_spec(f) for f in kind.item_type.fields])
    else:
        raise AssertionError(f"the JS tables have no port of {kind!r}")
    if not field.required:
        spec["default"] = field.default
    return {k: v for k, v in spec.items() if v is not None or k == "default"}


def structs(union: Any) -> dict[str, msgspec.inspect.StructType]:
    info = msgspec.inspect.type_info(union)
    assert isinstance(info, msgspec.inspect.UnionType)
    out = {}
    for struct in info.types:
        assert isinstance(struct, msgspec.inspect.StructType) and struct.forbid_unknown_fields
        out[str(struct.tag)] = struct
    return out


def described(struct: msgspec.inspect.StructType) -> list[dict[str, Any]]:
    return [field_spec(f) for f in struct.fields]


def test_error_codes_are_the_schemas(tables: dict[str, Any]) -> None:
    assert tables["ERROR_CODES"] == [code.value for code in ErrorCode]


def test_channel_messages_are_the_schemas(tables: dict[str, Any]) -> None:
    python = structs(ChannelMessage)
    ported, later = tables["CHANNEL_SCHEMA"], tables["LATER_TAGS"]
    # Every tag is either ported or explicitly let go for a later part; none twice.
    assert set(ported) | set(later) == set(python) and not set(ported) & set(later)
    for tag, fields in ported.items():
        assert fields == described(python[tag]), tag


@pytest.mark.parametrize(("name", "union", "tags"), [
    ("CLIENT_SCHEMA", ClientMessage, {"pair.peek", "pair.join", "rendezvous", "relay"}),
    ("SERVER_SCHEMA", ServerMessage,
     {"pair.info", "pair.joined", "rendezvous.waiting", "rendezvous.matched", "peer.left", "relay", "error"}),
])
def test_server_messages_a_phone_uses_are_the_schemas(tables: dict[str, Any], name: str, union: Any,
                                                      tags: set[str]) -> None:
    python = structs(union)
    assert set(tables[name]) == tags
    for tag, fields in tables[name].items():
        assert fields == described(python[tag]), tag
