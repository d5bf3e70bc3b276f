"""Write a run's results as JSON, a Markdown table and PNG plots."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .stats import ratio, targets  # noqa: E402

COLORS = {"stock": "#b0b0b0", "pdal-hub": "#1f77b4", "bare": "#2ca02c"}


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_before": os.getloadavg()[0],
    }


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict) -> str:
    lines = ["# Benchmark results: lab manual's stock setup vs pdal-hub", ""]
    info = results.get("machine", {})
    lines += [
        f"Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('memory_gb')} GB, "
        f"Linux {info.get('kernel')}, Python {info.get('python')}; load average before the run "
        f"{fmt(info.get('load_before'))}. Run at {results.get('started')} with "
        f"`{results.get('command')}`.",
        "",
        "## Targets",
        "",
        "| target | measured | limit | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for t in targets(results):
        lines.append(
            f"| {t.name} | {fmt(t.measured)} {t.unit} | {fmt(t.limit)} {t.unit} | {t.verdict} |"
        )
    single = results.get("single")
    if single:
        lines += [
            "",
            f"## 1. Single student (median of {single['reps']} runs, seconds)",
            "",
            "| phase | stock | pdal-hub | pdal-hub / stock |",
            "| --- | --- | --- | --- |",
        ]
        for phase in ("login", "hub spawn overhead", "server start", "first page", "total"):
            a = single.get("stock", {}).get(phase, {}).get("p50")
            b = single.get("pdal-hub", {}).get(phase, {}).get("p50")
            lines.append(f"| {phase} | {fmt(a)} | {fmt(b)} | {fmt(ratio(b, a))} |")
        lines.append(f"| bare `jupyter lab` start | {fmt(single['bare']['p50'])} | | |")
    for key, title in (("storm", "2. Class-start storm"), ("big_storm", "2b. Large storm")):
        storm = results.get(key)
        if not storm:
            continue
        lines += [
            "",
            f"## {title}: {storm['students']} students at once, {storm.get('reps', 1)} "
            "storm(s) per setup, times pooled (seconds; CPU per storm)",
            "",
            "| setup | p50 | p95 | max | failures | hub CPU s | proxy CPU s |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name in ("stock", "pdal-hub"):
            s = storm.get(name)
            if s:
                t = s["time_to_lab"]
                lines.append(
                    f"| {name} | {fmt(t['p50'])} | {fmt(t['p95'])} | {fmt(t['max'])} | "
                    f"{s['failures']} | {fmt(s['hub_cpu_s'])} | {fmt(s['proxy_cpu_s'])} |"
                )
        a = storm.get("stock", {}).get("time_to_lab", {}).get("p95")
        b = storm.get("pdal-hub", {}).get("time_to_lab", {}).get("p95")
        lines.append(f"\np95 ratio pdal-hub / stock: {fmt(ratio(b, a))}")
        for name in ("stock", "pdal-hub"):
            if storm.get(name, {}).get("errors"):
                lines.append(f"\n{name} errors: " + "; ".join(storm[name]["errors"]))
    flood = results.get("flood")
    if flood:
        lines += [
            "",
            f"## 3. Legitimate login under a flood of {flood['clients']} wrong-password "
            "clients (seconds)",
            "",
            "| setup | p50 | p95 | failed logins | wrong attempts | p50 without flood |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name in ("stock", "pdal-hub"):
            f = flood.get(name)
            if f:
                lines.append(
                    f"| {name} | {fmt(f['login']['p50'])} | {fmt(f['login']['p95'])} | "
                    f"{f['failures']} | {f['wrong_attempts']} | "
                    f"{fmt(f['login_without_flood']['p50'])} |"
                )
    mem = results.get("memory")
    if mem:
        lines += [
            "",
            "## 4. Memory (RSS, MB)",
            "",
            "| setup | hub | proxy | idle server p50 | idle server max | total, all active |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name in ("stock", "pdal-hub"):
            m = mem.get(name)
            if m:
                lines.append(
                    f"| {name} | {fmt(m['hub_rss_mb'], 0)} | {fmt(m['proxy_rss_mb'], 0)} | "
                    f"{fmt(m['server_rss_mb']['p50'], 0)} | {fmt(m['server_rss_mb']['max'], 0)} | "
                    f"{fmt(m['total_by_active'][-1][1], 0)} |"
                )
    api = results.get("api")
    if api:
        lines += [
            "",
            "## 5. Hub API latency with many users in the database (p50 / p95, ms)",
            "",
            "| users | call | stock | pdal-hub |",
            "| --- | --- | --- | --- |",
        ]
        for size, by_setup in api.items():
            for call in by_setup.get("stock", {}):
                cells = []
                for name in ("stock", "pdal-hub"):
                    s = by_setup.get(name, {}).get(call, {})
                    cells.append(
                        f"{fmt((s.get('p50') or 0) * 1000, 0)} / "
                        f"{fmt((s.get('p95') or 0) * 1000, 0)}"
                    )
                lines.append(f"| {size} | {call} | {cells[0]} | {cells[1]} |")
    lines.append("")
    return "\n".join(lines)


def plots(results: dict, out: Path) -> list[Path]:
    """One PNG with a panel per scenario that ran."""
    panels = [k for k in ("single", "storm", "flood", "memory", "api") if results.get(k)]
    if not panels:
        return []
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 4.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        globals()[f"_plot_{key}"](ax, results)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Lab manual's stock JupyterHub (grey) vs pdal-hub (blue), same machine, same run")
    fig.tight_layout()
    path = out / "bench.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written = [path]
    for key in ("storm", "big_storm"):
        if results.get(key, {}).get("curves"):
            written.append(_plot_storm_curve(results[key], out / f"{key}.png"))
    return written


def _plot_single(ax, results: dict) -> None:
    single = results["single"]
    phases = ["login", "hub spawn overhead", "server start", "first page"]
    names = ["stock", "pdal-hub"]
    for i, name in enumerate(names):
        bottom = 0.0
        for j, phase in enumerate(phases):
            value = single.get(name, {}).get(phase, {}).get("p50") or 0.0
            ax.bar(
                i,
                value,
                bottom=bottom,
                color=plt.cm.tab10(j),
                edgecolor="white",
                label=phase if i == 0 else None,
            )
            bottom += value
    ax.bar(2, single["bare"]["p50"] or 0, color=COLORS["bare"])
    ax.set_xticks([0, 1, 2], ["stock", "pdal-hub", "bare\njupyter lab"])
    ax.set_ylabel("seconds (median)")
    ax.set_title("1. One student: sign-in to /lab")
    ax.legend(fontsize=8)


def _plot_storm(ax, results: dict) -> None:
    storm = results["storm"]
    stats = ["p50", "p95", "max"]
    for k, name in enumerate(("stock", "pdal-hub")):
        values = [storm.get(name, {}).get("time_to_lab", {}).get(s) or 0 for s in stats]
        xs = [i + (k - 0.5) * 0.38 for i in range(len(stats))]
        ax.bar(xs, values, width=0.38, color=COLORS[name], label=name)
        fails = storm.get(name, {}).get("failures", 0)
        if fails:
            ax.text(xs[-1], values[-1], f"{fails} failed", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(stats)), stats)
    ax.set_ylabel("seconds to a loaded /lab")
    ax.set_title(f"2. {storm['students']} students start at once")
    ax.legend(fontsize=8)


def _plot_flood(ax, results: dict) -> None:
    flood = results["flood"]
    for k, name in enumerate(("stock", "pdal-hub")):
        login = flood.get(name, {}).get("login", {})
        ax.bar(k - 0.2, login.get("p50") or 0, width=0.38, color=COLORS[name])
        ax.bar(
            k + 0.2,
            login.get("p95") or 0,
            width=0.38,
            color=COLORS[name],
            hatch="//",
            edgecolor="black",
        )
    ax.axhline(0.5, color="red", linestyle="--", linewidth=1, label="target 0.5 s")
    ax.set_xticks([0, 1], ["stock\np50 | p95", "pdal-hub\np50 | p95"])
    ax.set_ylabel("seconds for a correct login")
    ax.set_title(f"3. Login during {flood['clients']}-client flood")
    ax.legend(fontsize=8)


def _plot_memory(ax, results: dict) -> None:
    mem = results["memory"]
    for name in ("stock", "pdal-hub"):
        curve = mem.get(name, {}).get("total_by_active", [])
        if curve:
            ax.plot(
                [c[0] for c in curve],
                [c[1] for c in curve],
                marker="o",
                color=COLORS[name],
                label=name,
            )
    ax.set_xlabel("active students")
    ax.set_ylabel("hub + proxy + servers RSS (MB)")
    ax.set_title("4. Memory vs active students")
    ax.legend(fontsize=8)


def _plot_api(ax, results: dict) -> None:
    api = results["api"]
    sizes = list(api)
    call = "GET /users?limit=50"
    for k, name in enumerate(("stock", "pdal-hub")):
        values = [(api[s].get(name, {}).get(call, {}).get("p95") or 0) * 1000 for s in sizes]
        xs = [i + (k - 0.5) * 0.38 for i in range(len(sizes))]
        ax.bar(xs, values, width=0.38, color=COLORS[name], label=name)
    ax.set_xticks(range(len(sizes)), [f"{s} users" for s in sizes])
    ax.set_ylabel("p95 ms (admin panel's user list)")
    ax.set_title("5. Hub API latency")
    ax.legend(fontsize=8)


def _plot_storm_curve(storm: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name in ("stock", "pdal-hub"):
        times = storm["curves"].get(name, [])
        failed = storm.get(name, {}).get("failures", 0)
        ax.step(
            [0.0] + times,
            range(len(times) + 1),
            where="post",
            color=COLORS[name],
            label=(
                f"{name}: {failed} of {storm['students'] * storm.get('reps', 1)} sign-ins failed"
                if failed
                else name
            ),
            linewidth=2,
        )
    ax.set_xlabel("seconds since everyone pressed Sign in")
    ax.set_ylabel("students with a loaded /lab (last storm)")
    ax.set_title(f"{storm['students']} students at once: who is working when")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write(results: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    (out / "results.md").write_text(markdown(results))
    return [out / "results.json", out / "results.md"] + plots(results, out)
