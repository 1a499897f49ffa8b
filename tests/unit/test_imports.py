"""The layout's promises about imports, checked on the source and in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

# What only the server needs: storage, Redis, encryption at rest.
SERVER_ONLY = ("sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "alembic", "redis",
               "cryptography")
# All the bridge may take from the server: the rules its document and parsing derive from,
# the error tree they raise (grpc and protobuf only), and the guarded provider client it
# fetches an audio link with (CONTRACT §6: the same client and limits as provider calls;
# httptools, aiohappyeyeballs and the OpenTelemetry API).
BRIDGE_MAY_IMPORT = {"ai1net.server", "ai1net.server.rules", "ai1net.server.errors",
                     "ai1net.server.transport", "ai1net.server.http1",
                     "ai1net.server.endpoints", "ai1net.server.memory",
                     "ai1net.server.telemetry"}

BRIDGE_ONLY = """
import json, sys
from ai1net.bridge.app import build_app
build_app(target="127.0.0.1:1")  # a bridge-only process: a gRPC client of the target
print(json.dumps(sorted(sys.modules)))
"""


# `ai1net serve --bridge-only`, stopped (SIGTERM) once its bridge listens: what it loaded.
SERVE_BRIDGE_ONLY = """
import json, os, signal, sys
from ai1net.server import cli, runner

started = runner.start_bridge

async def start_bridge(*args, **kwargs):
    bridge = await started(*args, **kwargs)
    print(json.dumps(sorted(sys.modules)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    return bridge

runner.start_bridge = start_bridge
sys.exit(cli.main(["serve", "--bridge-only", "--grpc-target", "127.0.0.1:1",
                   "--http-addr", "127.0.0.1:0"]))
"""


def loaded_by(program: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI1NET_", "OTEL_"))}
    out = subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                         text=True, timeout=60, env=env).stdout
    return set(json.loads(out.splitlines()[0]))


def test_a_bridge_only_process_loads_none_of_the_servers_dependencies():
    modules = loaded_by(BRIDGE_ONLY)
    assert "ai1net.bridge.app" in modules and "ai1net.common.ids" in modules  # it ran
    assert sorted(m for m in modules if m.split(".")[0] in SERVER_ONLY) == []
    assert sorted(m for m in modules if m.startswith("ai1net.server")
                  and m not in BRIDGE_MAY_IMPORT) == []
    assert not any(m.startswith("opentelemetry.sdk") for m in modules)


def test_serve_bridge_only_runs_none_of_the_servers_half():
    """The command line's --bridge-only process: the gateway's modules and its storage,
    Redis and encryption libraries stay out (with no AI1NET_DATABASE_URL to validate)."""
    modules = loaded_by(SERVE_BRIDGE_ONLY)
    assert "ai1net.server.runner" in modules and "ai1net.bridge.app" in modules  # it ran
    assert sorted(m for m in modules if m.split(".")[0] in SERVER_ONLY) == []
    gateway = {"ai1net.server.app", "ai1net.server.generate", "ai1net.server.storage",
               "ai1net.server.keys", "ai1net.server.registry", "ai1net.server.quota",
               "ai1net.server.crypto", "ai1net.server.usage", "ai1net.server.demo_setup"}
    assert sorted(gateway & modules) == []
    assert not any(m.startswith("ai1net.demo") for m in modules)


# -- no import cycle ---------------------------------------------------------------------------
#
# Every import statement counts, wherever it stands: at module level, inside a function or
# under ``if TYPE_CHECKING``. A function-level import is there to spare a process a library
# it may never use (the Redis client, the instrumentations, the demo provider), never to hide
# a cycle: counting it keeps that true.

ROOT = Path(__file__).resolve().parents[2]
# The folders mapped to ai1net.* in pyproject.toml ([tool.setuptools.package-dir]).
PACKAGES = {"ai1net.server": "server", "ai1net.bridge": "bridge", "ai1net.common": "common",
            "ai1net.demo": "demo", "ai1net.client": "clients/python/ai1net/client",
            "ai1net.v1": "clients/python/ai1net/v1"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from package import module` imports the module; else the name's module.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {each for each in found if each in known and each != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def test_the_project_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 100 and "ai1net.server.quota.failover" in graph  # it walked them all
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_cycle():
    """What the walk would have said of the old quota ↔ quota_redis pair (a function-level
    import back), and of a package importing a module that imports it."""
    graph = {"q": {"r"}, "r": {"q"}, "pkg": {"pkg.mod"}, "pkg.mod": {"pkg"}, "alone": set()}
    assert sorted(cycles(graph)) == [["pkg", "pkg.mod"], ["q", "r"]]


def test_imports_inside_functions_count(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ai1net.server.quota import failover\n")
    assert imports_of("ai1net.x.m", module, {"ai1net.server.quota.failover",
                                            "ai1net.server.quota"}) == \
        {"ai1net.server.quota.failover"}
