"""``python -m bench.sidebyside A B``: what a call costs in one version of AI1NET against
another, both loaded at once on one core (the paired passes of ``bench.run``).

A and B are git revisions of this repository (``HEAD``, ``771733e``) or source folders
(a checkout, a worktree). Each runs as ``ai1net serve`` from its own source: its packages
(``[tool.setuptools.package-dir]`` of its ``pyproject.toml``) linked under a folder put
first on ``PYTHONPATH``, with this checkout's environment for everything else. The load
is this checkout's. Each round prints both CPU costs per call and B's over A's; the median
of the rounds is the answer (same tree on both sides: within about 1% of 1.0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from bench import gateway
from bench.passes import Bench, Options, Progress, Target, cpu_per_call
from bench.run import LOG_DIR, ROOT, start_mock


@contextlib.contextmanager
def source(spec: str, stack: ExitStack) -> Iterator[Path]:
    """The source folder of ``spec``: itself, or a detached worktree of that revision."""
    if Path(spec).is_dir():
        yield Path(spec).resolve()
        return
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ai1net-rev-")))
    tree = folder / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                    str(tree), spec], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       check=False)


def packages(tree: Path, into: Path) -> Path:
    """A folder holding ``ai1net/<package>`` links to ``tree``'s sources, for PYTHONPATH."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())
    mapping: dict[str, str] = project["tool"]["setuptools"]["package-dir"]
    (into / "ai1net").mkdir(parents=True)
    for name, folder in mapping.items():
        (into / Path(*name.split("."))).symlink_to(tree / folder)
    return into


def environment(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="a git revision or a source folder")
    parser.add_argument("b", help="a git revision or a source folder")
    parser.add_argument("--kind", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds a round")
    parser.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    bench = Bench(Options(duration_s=args.duration), Progress(total=args.rounds))
    with ExitStack() as stack:
        links = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ai1net-ab-")))
        mock, mock_url = start_mock(stack, "sidebyside-mock")
        targets = {}
        for side, spec, extra in (("A", args.a, args.a_env), ("B", args.b, args.b_env)):
            tree = stack.enter_context(source(spec, stack))
            path = packages(tree, links / side)
            admin = secrets.token_urlsafe(24)
            env = {"PYTHONPATH": os.pathsep.join(filter(None, (
                str(path), os.environ.get("PYTHONPATH")))), **environment(extra)}
            sut = gateway.start(admin_key=admin, log_dir=LOG_DIR, name=f"sidebyside-{side}",
                                extra_env=env)
            stack.callback(sut.stop)
            key = sut.prepare(admin, mock_url)
            url = sut.grpc_target if args.kind == "grpc" else f"{sut.http_url}/v1/generate"
            targets[side] = Target(args.kind, url, key=key,
                                   watch={"mock": mock, "sut": sut.service})
        ratios = []
        for number in range(1, args.rounds + 1):
            results = bench.together(f"{args.kind} round {number}", targets)
            cost = {side: cpu_per_call(result) for side, result in results.items()}
            ratios.append(cost["B"] / cost["A"])
            print(f"round {number}: A {cost['A']:.0f} µs, B {cost['B']:.0f} µs of CPU a call; "
                  f"B/A {ratios[-1]:.3f}", flush=True)
    print(f"{args.kind}: B costs {statistics.median(ratios):.3f} times A's CPU a call (median of "
          f"{args.rounds}: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
