"""Regenerate the committed gRPC stubs from protos/ (``make protos``).

With ``--check`` it generates into a temporary folder and fails when the
committed stubs differ, so CI catches a proto edited without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "clients" / "python"
PACKAGE = Path("ai1net") / "v1"
KEEP = {"__init__.py", "py.typed"}


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / PACKAGE).glob("*.proto"))
    plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and p.name not in KEEP}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, committed = Path(tmp) / PACKAGE, OUT / PACKAGE
        names = generated_files(fresh)
        stale = sorted(names ^ generated_files(committed))
        stale += [n for n in sorted(names & generated_files(committed))
                  if not filecmp.cmp(fresh / n, committed / n, shallow=False)]
    if stale:
        print("stale generated stubs (run `make protos`):", ", ".join(stale))
        return 1
    print("generated stubs are up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    if parser.parse_args().check:
        return check()
    target = OUT / PACKAGE
    for name in generated_files(target) if target.exists() else ():
        (target / name).unlink()
    generate(OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
