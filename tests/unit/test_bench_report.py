"""The benchmark report: Markdown table, JSON and PNG plots from a run's results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))

from bench import report  # noqa: E402
from bench.scenarios import pool_storms  # noqa: E402


def storm_summary(p95: float, failures: int = 0) -> dict:
    return {
        "time_to_lab": {"n": 2, "p50": p95 / 2, "p95": p95, "max": p95},
        "failures": failures,
        "errors": ["TimeoutError: x"] if failures else [],
        "wall_s": p95,
        "hub_cpu_s": 1.0,
        "proxy_cpu_s": 0.1,
        "progress_messages": ["Server requested"],
    }


RESULTS = {
    "machine": {
        "cpu": "test cpu",
        "cores": 2,
        "memory_gb": 4.0,
        "kernel": "6",
        "python": "3.11",
        "load_before": 0.5,
    },
    "started": "2026-01-01 00:00 UTC",
    "command": "python -m bench --students 2",
    "single": {
        "reps": 1,
        "bare": {"n": 1, "p50": 2.0, "p95": 2.0, "max": 2.0},
        "stock": {
            p: {"n": 1, "p50": v, "p95": v, "max": v}
            for p, v in [
                ("login", 0.1),
                ("hub spawn overhead", 2.0),
                ("server start", 3.0),
                ("first page", 0.3),
                ("total", 5.4),
            ]
        },
        "pdal-hub": {
            p: {"n": 1, "p50": v, "p95": v, "max": v}
            for p, v in [
                ("login", 0.1),
                ("hub spawn overhead", 0.2),
                ("server start", 1.5),
                ("first page", 0.1),
                ("total", 1.9),
            ]
        },
    },
    "storm": {
        "students": 2,
        "reps": 1,
        "curves": {"stock": [4.0, 5.0], "pdal-hub": [2.0, 3.0]},
        "stock": storm_summary(5.0, failures=1),
        "pdal-hub": storm_summary(3.0),
    },
    "flood": {
        "clients": 8,
        "stock": {
            "clients": 8,
            "login": {"n": 3, "p50": 5.0, "p95": 9.0, "max": 9.5},
            "failures": 0,
            "wrong_attempts": 40,
            "login_without_flood": {"n": 3, "p50": 0.1, "p95": 0.1, "max": 0.1},
        },
        "pdal-hub": {
            "clients": 8,
            "login": {"n": 3, "p50": 0.1, "p95": 0.2, "max": 0.3},
            "failures": 0,
            "wrong_attempts": 400,
            "login_without_flood": {"n": 3, "p50": 0.1, "p95": 0.1, "max": 0.1},
        },
    },
    "memory": {
        name: {
            "hub_rss_mb": 120.0,
            "proxy_rss_mb": 50.0,
            "server_rss_mb": {"n": 2, "p50": rss, "p95": rss, "max": rss},
            "total_by_active": [[0, 170.0], [1, 170.0 + rss], [2, 170.0 + 2 * rss]],
        }
        for name, rss in (("stock", 128.0), ("pdal-hub", 112.0))
    },
    "api": {
        "100": {
            name: {"GET /users?limit=50": {"n": 2, "p50": 0.01, "p95": 0.02, "max": 0.02}}
            for name in ("stock", "pdal-hub")
        }
    },
}


def test_markdown_has_every_scenario_and_the_targets():
    text = report.markdown(RESULTS)
    for heading in (
        "## Targets",
        "## 1. Single student",
        "## 2. Class-start storm",
        "## 3. Legitimate login",
        "## 4. Memory",
        "## 5. Hub API latency",
    ):
        assert heading in text
    assert "| hub spawn overhead | 2.00 | 0.20 | 0.10 |" in text
    assert "| stock | 2.50 | 5.00 | 5.00 | 1 |" in text
    assert "stock errors: TimeoutError: x" in text
    assert "test cpu, 2 cores" in text


def test_write_creates_json_markdown_and_readable_pngs(tmp_path):
    written = report.write(RESULTS, tmp_path)
    assert {p.name for p in written} == {"results.json", "results.md", "bench.png", "storm.png"}
    assert json.loads((tmp_path / "results.json").read_text())["storm"]["students"] == 2
    for png in ("bench.png", "storm.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_partial_run(tmp_path):
    partial = {k: RESULTS[k] for k in ("machine", "started", "command", "flood")}
    written = report.write(partial, tmp_path)
    assert "## 1. Single student" not in (tmp_path / "results.md").read_text()
    assert (tmp_path / "bench.png") in written


def test_pool_storms_pools_times_and_sums_failures():
    pooled = pool_storms([storm_summary(4.0, 1), storm_summary(2.0)], [[1.0, 4.0], [2.0]])
    assert pooled["time_to_lab"]["n"] == 3
    assert pooled["time_to_lab"]["max"] == 4.0
    assert pooled["failures"] == 1
    assert pooled["p95_per_storm"] == [pytest.approx(3.85), 2.0]
