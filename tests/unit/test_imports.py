"""The layout's promises about imports, checked on the source and in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

# What only the server needs: storage, Redis, encryption at rest.
SERVER_ONLY = ("sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "alembic", "redis",
               "cryptography")
# All the bridge may take from the server: the rules its document and parsing derive from,
# and the error tree they raise (grpc and protobuf only).
BRIDGE_MAY_IMPORT = {"ai1net.server", "ai1net.server.rules", "ai1net.server.errors"}

BRIDGE_ONLY = """
import json, sys
from ai1net.bridge.app import build_app
build_app(target="127.0.0.1:1")  # a bridge-only process: a gRPC client of the target
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by(program: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return set(json.loads(out))


def test_a_bridge_only_process_loads_none_of_the_servers_dependencies():
    modules = loaded_by(BRIDGE_ONLY)
    assert "ai1net.bridge.app" in modules and "ai1net.common.ids" in modules  # it ran
    assert sorted(m for m in modules if m.split(".")[0] in SERVER_ONLY) == []
    assert sorted(m for m in modules if m.startswith("ai1net.server")
                  and m not in BRIDGE_MAY_IMPORT) == []
    assert not any(m.startswith("opentelemetry.sdk") for m in modules)
