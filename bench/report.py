"""Turning a run's results into the comparison table, the ratios against issue 7's targets,
the JSON file and the PNG chart."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.costs import describe as describe_costs
from bench.openai_surface import describe as describe_surfaces

Results = dict[str, Any]

LABELS = {
    "direct": "direct → mock",
    "bare-http": "bare aiohttp proxy",
    "bare-grpc": "bare grpc.aio proxy",
    "ai1net-http": "AI1NET HTTP",
    "ai1net-grpc": "AI1NET gRPC",
    "direct-stream": "direct stream → mock",
    "ai1net-http-stream": "AI1NET HTTP stream",
    "ai1net-grpc-stream": "AI1NET gRPC stream",
    "ai1net-openai": "AI1NET OpenAI surface",
    "ai1net-openai-stream": "AI1NET OpenAI stream",
    "cost-default": "AI1NET HTTP, costs: default",
    "cost-no-accounting": "AI1NET HTTP, accounting off",
    "cost-no-tracing": "AI1NET HTTP, tracing off",
    "litellm": "LiteLLM proxy (peer run)",
    "litellm-stream": "LiteLLM stream (peer run)",
}


def scenario(results: Results, name: str) -> dict[str, Any]:
    found: dict[str, Any] = results["scenarios"].get(name, {})
    return found


def metric(results: Results, name: str, phase: str, key: str,
           part: str = "summary") -> float | None:
    """One number from a scenario's ``throughput``/``latency`` pass, None when missing."""
    data = scenario(results, name).get(phase) or {}
    value = (data.get(part) or {}).get(key)
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def added(results: Results, name: str, key: str, part: str = "summary") -> float | None:
    """Latency over the direct call at concurrency 1 (streams: over the direct stream)."""
    mine = metric(results, name, "latency", key, part)
    baseline = scenario(results, name).get("baseline")  # a peer run brings its own
    if baseline is not None:
        theirs = ((baseline.get("latency") or {}).get(part) or {}).get(key)
    else:
        base = "direct-stream" if name.endswith("stream") else "direct"
        theirs = metric(results, base, "latency", key, part)
    return None if mine is None or theirs is None else mine - theirs


# -- ratios against the targets ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    value: float | None
    target: str
    ok: Callable[[float], bool]
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "value": self.value, "target": self.target,
                "met": None if self.value is None else self.ok(self.value)}

    def row(self) -> tuple[str, str, str, str]:
        if self.value is None:
            return self.what, "—", self.target, "n/a"
        shown = f"{self.value:.1%}" if self.unit == "%" else f"{self.value:,.2f}{self.unit}"
        return self.what, shown, self.target, "yes" if self.ok(self.value) else "NO"


def divide(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def ttfc_gap(results: Results) -> float | None:
    """How much later the OpenAI stream's first chunk comes than the native stream's."""
    mine = metric(results, "ai1net-openai-stream", "latency", "p50_ms", "ttfc")
    native = metric(results, "ai1net-http-stream", "latency", "p50_ms", "ttfc")
    return None if mine is None or native is None else mine - native


def peak_rss(results: Results, prefix: str) -> float | None:
    peaks = [data["rss_mib"] for name, data in results["scenarios"].items()
             if name.startswith(prefix) and data.get("rss_mib") is not None]
    return max(peaks, default=None)


def checks(results: Results) -> list[Check]:
    rps = {name: metric(results, name, "throughput", "rps") for name in
           ("bare-http", "bare-grpc", "ai1net-http", "ai1net-grpc", "ai1net-openai", "litellm")}
    startup = results.get("startup", {}).get("median_s")
    cost = results.get("costs") or {}
    paired = results.get("paired") or {}
    surfaces = results.get("openai_surface") or {}
    return [
        Check("AI1NET HTTP req/s / bare aiohttp proxy", divide(rps["ai1net-http"],
              rps["bare-http"]), "≥ 40%", lambda v: v >= 0.40, "%"),
        Check("  same, paired (CPU per call, loaded at once)", paired.get("http"), "≥ 40%",
              lambda v: v >= 0.40, "%"),
        Check("AI1NET gRPC req/s / bare grpc.aio proxy", divide(rps["ai1net-grpc"],
              rps["bare-grpc"]), "≥ 70%", lambda v: v >= 0.70, "%"),
        Check("  same, paired (CPU per call, loaded at once)", paired.get("grpc"), "≥ 70%",
              lambda v: v >= 0.70, "%"),
        Check("AI1NET HTTP req/s / LiteLLM", divide(rps["ai1net-http"], rps["litellm"]),
              "≥ 20x", lambda v: v >= 20, "x"),
        Check("AI1NET gRPC req/s / LiteLLM", divide(rps["ai1net-grpc"], rps["litellm"]),
              "≥ 15x", lambda v: v >= 15, "x"),
        Check("added latency HTTP c=1 p50", added(results, "ai1net-http", "p50_ms"),
              "≤ 1 ms", lambda v: v <= 1, " ms"),
        Check("added latency HTTP c=1 p99", added(results, "ai1net-http", "p99_ms"),
              "≤ 3 ms", lambda v: v <= 3, " ms"),
        Check("added latency gRPC c=1 p50 (vs direct HTTP)",
              added(results, "ai1net-grpc", "p50_ms"), "≤ 1 ms", lambda v: v <= 1, " ms"),
        Check("added latency gRPC c=1 p99 (vs direct HTTP)",
              added(results, "ai1net-grpc", "p99_ms"), "≤ 3 ms", lambda v: v <= 3, " ms"),
        Check("added TTFC HTTP stream p50", added(results, "ai1net-http-stream", "p50_ms",
              "ttfc"), "≤ 2 ms", lambda v: v <= 2, " ms"),
        Check("added TTFC gRPC stream p50 (vs direct HTTP)", added(
            results, "ai1net-grpc-stream", "p50_ms", "ttfc"), "≤ 2 ms", lambda v: v <= 2, " ms"),
        Check("OpenAI surface req/s / AI1NET HTTP (issue 14)",
              divide(rps["ai1net-openai"], rps["ai1net-http"]), "≥ 90%", lambda v: v >= 0.90,
              "%"),
        Check("  same, paired (CPU per call, loaded at once)", surfaces.get("cpu_ratio"), "≥ 90%",
              lambda v: v >= 0.90, "%"),
        Check("OpenAI stream TTFC p50 over AI1NET HTTP stream's (issue 14)",
              ttfc_gap(results), "≤ 0.5 ms", lambda v: v <= 0.5, " ms"),
        Check("  same, paired (c=1, side by side)", surfaces.get("ttfc_gap_ms"), "≤ 0.5 ms",
              lambda v: v <= 0.5, " ms"),
        Check("AI1NET peak RSS under load", peak_rss(results, "ai1net"),
              "≤ 150 MiB", lambda v: v <= 150, " MiB"),
        Check("AI1NET start-up to ready (median)", startup, "≤ 1.5 s", lambda v: v <= 1.5,
              " s"),
        Check("accounting cost: CPU per call vs AI1NET_ACCOUNTING=0 (paired)",
              cost.get("accounting"), "≤ 10%", lambda v: v <= 0.10, "%"),
        Check("tracing (sampled off) cost: CPU per call vs AI1NET_TRACING=0 (paired)",
              cost.get("tracing"), "≤ 10%", lambda v: v <= 0.10, "%"),
    ]


# -- the table -----------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def pair(first: float | None, second: float | None, spec: str = ".2f") -> str:
    if first is None and second is None:
        return "—"
    return f"{fmt(first, spec)} / {fmt(second, spec)}"


def scenario_row(results: Results, name: str) -> list[str]:
    data = scenario(results, name)
    stream = name.endswith("stream")
    loaded = data.get("throughput") or data.get("latency") or {}
    shares, other = loaded.get("cpu_pct") or {}, loaded.get("other_load_pct") or {}
    stolen = loaded.get("stolen_pct") or {}
    errors = sum((data.get(phase) or {}).get("summary", {}).get("errors", 0)
                 for phase in ("throughput", "latency"))
    return [
        LABELS.get(name, name),
        rate(results, name),
        pair(metric(results, name, "throughput", "p50_ms"),
             metric(results, name, "throughput", "p99_ms")),
        pair(metric(results, name, "latency", "p50_ms"), metric(results, name, "latency",
                                                                "p99_ms")),
        "—" if name.startswith("direct") else pair(added(results, name, "p50_ms"),
                                                   added(results, name, "p99_ms")),
        pair(metric(results, name, "latency", "p50_ms", "ttfc"),
             metric(results, name, "latency", "p99_ms", "ttfc")) if stream else "—",
        "—" if not stream or name.startswith("direct") else fmt(
            added(results, name, "p50_ms", "ttfc"), ".2f"),
        str(errors), fmt(data.get("rss_mib"), ".0f"),
        "/".join(fmt(shares.get(n)) for n in ("client", "mock", "sut")),
        "/".join(fmt(other.get(c)) for c in ("cpu0", "cpu1")),
        "/".join(fmt(stolen.get(c)) for c in ("cpu0", "cpu1")),
    ]


def rate(results: Results, name: str) -> str:
    """Requests/s of the kept round, with the range when there were several rounds."""
    kept = fmt(metric(results, name, "throughput", "rps"))
    rounds = [r for r in scenario(results, name).get("throughput_rounds_rps") or [] if r]
    return f"{kept} [{min(rounds):,.0f}-{max(rounds):,.0f}]" if len(rounds) > 1 else kept


HEADER = ["system", "req/s c=32", "p50/p99 ms c=32", "p50/p99 ms c=1", "added p50/p99 ms",
          "TTFC p50/p99 ms", "added TTFC p50", "errors", "peak RSS MiB",
          "CPU% client/mock/SUT", "other load% cpu0/cpu1", "stolen% cpu0/cpu1"]


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                       for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def describe_paired(paired: dict[str, Any]) -> list[str]:
    lines = []
    for kind, bare in (("http", "bare aiohttp proxy"), ("grpc", "bare grpc.aio proxy")):
        passes = paired.get(f"{kind}_passes") or []
        shown = "; ".join(
            f"{p['ai1net']['cpu_us_per_call']:.0f} vs {p['bare']['cpu_us_per_call']:.0f} µs"
            for p in passes)
        value = paired.get(kind)
        lines.append(f"paired {kind.upper()}: AI1NET would serve "
                     f"{'—' if value is None else f'{value:.1%}'} of the {bare}'s req/s "
                     f"(CPU per call, AI1NET vs bare, loaded at once: {shown})")
        busy = max((p["bare"].get("client_core_busy_pct") or 0 for p in passes), default=0)
        if busy >= 95:
            lines.append(f"WARNING: paired {kind.upper()}: the load generators' core was "
                         f"{busy:.0f}% busy: the two systems were not saturated, the ratio is "
                         "a rough one")
    return lines


def table(results: Results) -> str:
    rows = [HEADER] + [scenario_row(results, name) for name in LABELS
                       if name in results["scenarios"]]
    ratio_rows = [["target (issue 7)", "measured", "wanted", "met"]]
    ratio_rows += [list(check.row()) for check in checks(results)]
    startup = results.get("startup", {})
    lines = [render(rows), ""]
    if startup:
        runs = ", ".join(f"{s:.2f}" for s in startup.get("runs_s", []))
        lines.append(f"AI1NET start-up to ready: median {fmt(startup.get('median_s'), '.2f')} s "
                     f"(runs: {runs}; fresh SQLite each)")
    if results.get("paired"):
        lines += ["", *describe_paired(results["paired"])]
    if results.get("openai_surface"):
        lines += ["", *describe_surfaces(results["openai_surface"])]
    if results.get("costs"):
        lines += ["", *describe_costs(results["costs"])]
    lines += ["", render(ratio_rows), "", *results.get("notes", [])]
    return "\n".join(lines)


# -- files ---------------------------------------------------------------------------------


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    results = {**results, "checks": [check.as_dict() for check in checks(results)]}
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def write_chart(results: Results, path: Path) -> bool:
    """A 2x2 PNG: throughput, latency at c=1, added latency/TTFC, memory. False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    throughput_panel(axes[0][0], results)
    latency_panel(axes[0][1], results)
    added_panel(axes[1][0], results)
    memory_panel(axes[1][1], results)
    machine = results.get("machine", {})
    figure.suptitle(f"AI1NET bench — {machine.get('cpu', '?')}, {machine.get('cores', '?')} "
                    f"cores, {results.get('started_at', '')}", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def bars(axis: Any, names: list[str], values: list[float | None], title: str,
         unit: str) -> None:
    shown = [(LABELS.get(n, n).replace(" ", "\n", 1), v or 0.0) for n, v in zip(names, values,
                                                                               strict=True)]
    drawn = axis.bar([label for label, _ in shown], [v for _, v in shown], color="#4477aa")
    axis.bar_label(drawn, fmt="{:,.0f}", fontsize=8)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel(unit)
    axis.tick_params(axis="x", labelsize=8)


def throughput_panel(axis: Any, results: Results) -> None:
    names = [n for n in ("direct", "bare-http", "ai1net-http", "bare-grpc", "ai1net-grpc",
                         "litellm") if metric(results, n, "throughput", "rps") is not None]
    bars(axis, names, [metric(results, n, "throughput", "rps") for n in names],
         "throughput at concurrency 32", "requests/s")


def latency_panel(axis: Any, results: Results) -> None:
    names = [n for n in LABELS if metric(results, n, "latency", "p50_ms") is not None]
    labels = [LABELS[n] for n in names]
    positions = range(len(names))
    for offset, key, color in ((-0.2, "p50_ms", "#4477aa"), (0.2, "p99_ms", "#ee6677")):
        axis.bar([p + offset for p in positions],
                 [metric(results, n, "latency", key) or 0 for n in names], width=0.4,
                 label=key.split("_")[0], color=color)
    axis.set_xticks(list(positions), labels, fontsize=7, rotation=25, ha="right")
    axis.set_title("latency at concurrency 1 (whole call)", fontsize=10)
    axis.set_ylabel("ms")
    axis.legend(fontsize=8)


def added_panel(axis: Any, results: Results) -> None:
    items = [("HTTP p50", added(results, "ai1net-http", "p50_ms"), 1.0),
             ("HTTP p99", added(results, "ai1net-http", "p99_ms"), 3.0),
             ("gRPC p50", added(results, "ai1net-grpc", "p50_ms"), 1.0),
             ("gRPC p99", added(results, "ai1net-grpc", "p99_ms"), 3.0),
             ("HTTP TTFC p50", added(results, "ai1net-http-stream", "p50_ms", "ttfc"), 2.0),
             ("gRPC TTFC p50", added(results, "ai1net-grpc-stream", "p50_ms", "ttfc"), 2.0)]
    labels = [label for label, _, _ in items]
    drawn = axis.bar(labels, [value or 0 for _, value, _ in items], color="#228833")
    axis.bar_label(drawn, fmt="%.2f", fontsize=8)
    axis.scatter(labels, [target for _, _, target in items], marker="_", s=600, color="black",
                 label="target", zorder=3)
    axis.set_title("AI1NET: added over direct at concurrency 1", fontsize=10)
    axis.set_ylabel("ms")
    axis.tick_params(axis="x", labelsize=8)
    axis.legend(fontsize=8)


def memory_panel(axis: Any, results: Results) -> None:
    peaks = {"bare-http": peak_rss(results, "bare-http"),
             "bare-grpc": peak_rss(results, "bare-grpc"),
             "AI1NET": peak_rss(results, "ai1net"), "litellm": peak_rss(results, "litellm")}
    names = [name for name, peak in peaks.items() if peak is not None]
    bars(axis, names, [peaks[name] for name in names],
         "peak RSS of the system under test (target ≤ 150 MiB)", "MiB")
    axis.axhline(150, color="black", linewidth=0.8, linestyle="--")
