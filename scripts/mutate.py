"""A repeatable mutation run (``make mutation``) over the modules that hold the rules.

mutmut cannot follow the package-dir mapping (``ai1net.server`` is the folder ``server/``),
so this is a small AST mutator of its own. Each mutant changes one thing — flips a
comparison, negates a condition, swaps ``and``/``or``, nudges a constant, swaps ``+``/``-``,
widens a role set, drops a ``raise`` or a call statement — and runs the module's tests with
that mutant in place of the module (a worker process swaps it in between pytest runs:
nothing on disk changes, so mutants run side by side). A mutant is killed when a test fails.

    python scripts/mutate.py                 # every module, two at a time
    python scripts/mutate.py --module auth   # one module
    python scripts/mutate.py --list auth     # the mutants, without running them

Mutants are numbered in source order, so a run is repeatable and a survivor can be rerun
alone (``--module auth --only 17``). The report goes to build/mutation/; survivors are
either killed by a new test or argued equivalent in docs/MUTATION.md.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "build" / "mutation"
TIMEOUT_S = 600

# The modules under test and the tests that speak for each (fast ones, in process).
MODULES: dict[str, tuple[str, ...]] = {
    "auth": ("tests/unit/test_auth.py", "tests/integration/test_authz.py"),
    "keys": ("tests/unit/test_keys.py", "tests/unit/test_auth.py",
             "tests/integration/test_audit.py"),
    "quota.core": ("tests/unit/test_quota.py", "tests/integration/test_limits.py"),
    "quota.local": ("tests/unit/test_quota.py", "tests/integration/test_limits.py"),
    "routing": ("tests/unit/test_routing.py", "tests/integration/test_routing.py"),
    "money": ("tests/unit/test_money.py", "tests/unit/test_quota.py"),
}
FLIPS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
    ast.IsNot: ast.Is, ast.And: ast.Or, ast.Or: ast.And, ast.Add: ast.Sub, ast.Sub: ast.Add,
    ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
}
# Role sets, narrowest first: a mutant widens one use to the next (ADMIN → PROVIDERS).
ROLE_SETS = ("ADMIN", "PROVIDERS", "ANY")
QUIET_CALLS = ("log", "logging", "warnings")  # calls whose loss no test should care about


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int
    line: int
    what: str


class _Sites(ast.NodeVisitor):
    """Every place a mutation applies, in source order: (node, kind, description)."""

    def __init__(self) -> None:
        self.sites: list[tuple[ast.AST, str, str]] = []

    def add(self, node: ast.AST, kind: str, what: str) -> None:
        self.sites.append((node, kind, what))

    def visit_Expr(self, node: ast.Expr) -> None:
        value = node.value.value if isinstance(node.value, ast.Await) else node.value
        if isinstance(value, ast.Call) and not _quiet(value):
            self.add(node, "drop", f"drop `{ast.unparse(node)[:60]}`")
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        self.add(node, "drop", f"drop `{ast.unparse(node)[:60]}`")
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self.add(node, "negate", f"negate `if {ast.unparse(node.test)[:60]}`")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.add(node, "negate", f"negate `{ast.unparse(node.test)[:60]}` (conditional)")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.add(node, "unnot", f"drop `not` of `{ast.unparse(node.operand)[:60]}`")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            if type(op) in FLIPS:
                self.add(node, f"cmp{i}", f"`{_op(op)}` → `{_op(FLIPS[type(op)]())}` in "
                                          f"`{ast.unparse(node)[:60]}`")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.add(node, "boolop", f"`{_op(node.op)}` → `{_op(FLIPS[type(node.op)]())}` in "
                                 f"`{ast.unparse(node)[:60]}`")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in FLIPS:
            self.add(node, "binop", f"`{_op(node.op)}` → `{_op(FLIPS[type(node.op)]())}` in "
                                    f"`{ast.unparse(node)[:60]}`")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bool):
            self.add(node, "const", f"`{node.value}` → `{not node.value}`")
        elif isinstance(node.value, int | float):
            self.add(node, "const", f"`{node.value!r}` → `{_nudged(node.value)!r}`")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in ROLE_SETS[:-1] and isinstance(node.ctx, ast.Load):
            wider = ROLE_SETS[ROLE_SETS.index(node.id) + 1]
            self.add(node, "widen", f"`{node.id}` → `{wider}`")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return None  # messages: nothing to decide on

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Skip the docstring; visit the rest.
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        for child in (node.args, *body):  # not decorators or annotations: declarations
            self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        # Decorators (@dataclass(frozen=True, slots=True)) and docstrings are declarations.
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        for child in (*node.bases, *body):
            self.visit(child)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_arguments(self, node: ast.arguments) -> None:
        for default in (*node.defaults, *(d for d in node.kw_defaults if d is not None)):
            self.visit(default)


def _quiet(call: ast.Call) -> bool:
    target = call.func
    while isinstance(target, ast.Attribute):
        target = target.value
    return isinstance(target, ast.Name) and target.id in QUIET_CALLS


def _nudged(value: float) -> float:
    if isinstance(value, int):
        return value + 1
    return value * 2 if value else 1.0


def _op(op: ast.AST) -> str:
    return {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
            ast.IsNot: "is not", ast.And: "and", ast.Or: "or", ast.Add: "+", ast.Sub: "-",
            ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//"}[type(op)]


def source_of(module: str) -> Path:
    """``quota.local`` is server/quota/local.py."""
    return ROOT / "server" / f"{module.replace('.', '/')}.py"


def sites(tree: ast.Module) -> list[tuple[ast.AST, str, str]]:
    finder = _Sites()
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    for node in body:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            finder.visit(node)
    return finder.sites


def mutants(module: str) -> list[Mutant]:
    tree = ast.parse(source_of(module).read_text())
    return [Mutant(module, i, getattr(node, "lineno", 0), what)
            for i, (node, _kind, what) in enumerate(sites(tree))]


def mutated_tree(module: str, index: int) -> ast.Module:
    """The module's AST with mutant ``index`` applied."""
    tree = ast.parse(source_of(module).read_text())
    node, kind, _what = sites(tree)[index]
    _apply(node, kind)
    return ast.fix_missing_locations(tree)


def _apply(node: ast.AST, kind: str) -> None:
    if kind == "drop":
        node.__class__ = ast.Pass
        for name in list(vars(node)):
            if name not in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
                delattr(node, name)
    elif kind == "negate":
        assert isinstance(node, ast.If | ast.IfExp)
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif kind == "unnot":
        assert isinstance(node, ast.UnaryOp)
        operand = copy.copy(node.operand)
        node.__class__ = ast.BoolOp  # `not x` → `x and x`: x's own truth, same node kind
        del node.op, node.operand
        node.op, node.values = ast.And(), [operand, copy.copy(operand)]  # type: ignore[attr-defined]
    elif kind.startswith("cmp"):
        assert isinstance(node, ast.Compare)
        i = int(kind[3:])
        node.ops[i] = FLIPS[type(node.ops[i])]()  # type: ignore[assignment]
    elif kind in ("boolop", "binop"):
        node.op = FLIPS[type(node.op)]()  # type: ignore[attr-defined]
    elif kind == "const":
        assert isinstance(node, ast.Constant)
        node.value = not node.value if isinstance(node.value, bool) else _nudged(node.value)
    elif kind == "widen":
        assert isinstance(node, ast.Name)
        node.id = ROLE_SETS[ROLE_SETS.index(node.id) + 1]


# -- running ----------------------------------------------------------------------------------
#
# A worker process imports the third-party libraries once, then for each mutant forgets
# the project's modules (tables.py stays: SQLModel's metadata is global), puts the mutant in
# place of its module and runs the module's tests with pytest.main. Nothing on disk changes.

KEPT = ("ai1net.server.tables", "ai1net.server.migrations", "ai1net.v1", "ai1net.client")


def _forget_project_modules() -> None:
    for name in list(sys.modules):
        if name.startswith(("ai1net.server.", "ai1net.bridge", "tests")) \
                and not name.startswith(KEPT):
            del sys.modules[name]


def _install(module: str, index: int) -> None:
    import importlib
    import types

    tree = mutated_tree(module, index)
    name = f"ai1net.server.{module}"
    parent_name, _, leaf = name.rpartition(".")
    # A module of a package (quota.local) is imported with it: its package re-exports it.
    original = importlib.import_module(name) if "." in module else None
    package = importlib.import_module(parent_name)
    mutant = types.ModuleType(name)
    mutant.__file__ = str(source_of(module))
    mutant.__package__ = parent_name
    sys.modules[name] = mutant
    setattr(package, leaf, mutant)
    exec(compile(tree, mutant.__file__, "exec"), mutant.__dict__)  # noqa: S102
    if original is not None:
        _rebind(original, mutant)


def _rebind(original: object, mutant: object) -> None:
    """What modules already imported took from ``original`` now comes from ``mutant``."""
    name = getattr(original, "__name__", "")
    for other in list(sys.modules.values()):
        if other is mutant or not getattr(other, "__name__", "").startswith("ai1net.server."):
            continue
        for attr, value in list(vars(other).items()):
            if getattr(value, "__module__", None) == name and hasattr(mutant, attr) \
                    and getattr(original, attr, None) is value:
                setattr(other, attr, getattr(mutant, attr))


def _pytest_passes(module: str) -> bool | None:
    """True: every test passed; False: one failed; None: the run itself broke."""
    import contextlib
    import io

    import pytest

    tests = [str(ROOT / t) for t in MODULES[module] if (ROOT / t).exists()]
    # A resource warning pytest reports after the run would raise out of pytest.main.
    arguments = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header",
                 "-o", "addopts=", "-W", "ignore::pytest.PytestUnraisableExceptionWarning",
                 *tests]
    try:
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            code = pytest.main(arguments)
    except Exception:
        return None
    return code == 0 if code in (0, 1) else None


def worker(module: str, indexes: list[int]) -> None:
    """Run in a child: one JSON line per mutant, ``{"index": n, "survived": bool}``."""
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    for index in indexes:
        _forget_project_modules()
        if index >= 0:
            try:
                _install(module, index)
            except Exception:  # the mutant does not even import: killed
                print(json.dumps({"index": index, "survived": False}), flush=True)
                continue
        print(json.dumps({"index": index, "survived": _pytest_passes(module)}), flush=True)


def run_workers(module: str, indexes: list[int], jobs: int) -> dict[int, bool | None]:
    """Each of ``jobs`` workers takes every jobs-th mutant; their verdicts by index."""
    shares = [indexes[i::jobs] for i in range(jobs) if indexes[i::jobs]]
    children = [subprocess.Popen(
        [sys.executable, __file__, "--worker", module, ",".join(map(str, share))],
        cwd=ROOT, stdout=subprocess.PIPE, text=True) for share in shares]
    verdicts: dict[int, bool | None] = {}
    with ThreadPoolExecutor(max(1, len(children))) as pool:
        for lines in pool.map(lambda child: child.communicate(timeout=TIMEOUT_S * 20)[0],
                              children):
            for line in lines.splitlines():
                if line.startswith("{"):
                    verdict = json.loads(line)
                    verdicts[verdict["index"]] = verdict["survived"]
    # A worker that died (a mutant that hangs or crashes the process) leaves no verdict.
    verdicts.update(dict.fromkeys(set(indexes) - set(verdicts)))
    return verdicts


def run_module(module: str, jobs: int, only: list[int] | None) -> dict[str, object]:
    if not run_workers(module, [-1], 1)[-1]:
        raise SystemExit(f"{module}: the tests fail without any mutant; fix them first")
    chosen = [m for m in mutants(module) if only is None or m.index in only]
    started = time.monotonic()
    verdicts = run_workers(module, [m.index for m in chosen], jobs)
    broken = [index for index, verdict in verdicts.items() if verdict is None]
    for index in broken:  # once more, alone, in a fresh worker
        verdicts[index] = run_workers(module, [index], 1)[index]
    # A run that still breaks counts as a survivor: it must be explained, not assumed killed.
    survivors = [asdict(m) for m in chosen if verdicts[m.index] is not False]
    killed = len(chosen) - len(survivors)
    score = killed / len(chosen) if chosen else 1.0
    print(f"{module}: {killed}/{len(chosen)} killed ({score:.0%}) in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    for survivor in survivors:
        print(f"  survived #{survivor['index']} line {survivor['line']}: {survivor['what']}",
              flush=True)
    return {"module": module, "mutants": len(chosen), "killed": killed, "score": score,
            "survivors": survivors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="a module to mutate (repeatable; default: all)")
    parser.add_argument("--only", type=int, action="append", help="only mutant number N")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--list", choices=sorted(MODULES), help="list a module's mutants")
    parser.add_argument("--min-score", type=float, default=0.9,
                        help="fail when a module kills fewer (default 0.9)")
    parser.add_argument("--worker", nargs=2, metavar=("MODULE", "INDEXES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], [int(i) for i in args.worker[1].split(",")])
        return 0
    if args.list:
        for mutant in mutants(args.list):
            print(f"#{mutant.index} line {mutant.line}: {mutant.what}")
        return 0
    results = [run_module(module, args.jobs, args.only) for module in args.module or MODULES]
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / "report.json").write_text(json.dumps(results, indent=2))
    low = [r["module"] for r in results if float(str(r["score"])) < args.min_score]
    if low:
        print(f"below {args.min_score:.0%}: {', '.join(map(str, low))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
