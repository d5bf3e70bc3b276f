"""Pure helpers for the benchmark: percentiles, summaries, ratios and target verdicts."""

from __future__ import annotations

import math
from dataclasses import dataclass


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float]) -> dict:
    """n, p50, p95 and max of `values` (None where there are no values)."""
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """ours / baseline, or None when either is missing or the baseline is zero."""
    if ours is None or not baseline:
        return None
    return ours / baseline


@dataclass(frozen=True)
class Target:
    """One of issue 6's targets: `measured` must be <= `limit` (None = not measured)."""

    name: str
    measured: float | None
    limit: float
    unit: str = "x"

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "not measured"
        return "met" if self.measured <= self.limit else "NOT met"


def targets(results: dict) -> list[Target]:
    """Issue 6's targets evaluated on a run's results (see runner.run_scenarios)."""
    single = results.get("single", {})
    storm = results.get("storm", {})
    flood = results.get("flood", {})
    memory = results.get("memory", {})
    ours_storm = storm.get("pdal-hub", {})
    return [
        Target(
            "single student time-to-lab / bare JupyterLab start",
            ratio(
                single.get("pdal-hub", {}).get("total", {}).get("p50"),
                single.get("bare", {}).get("p50"),
            ),
            1.25,
        ),
        Target(
            f"{storm.get('students', '?')}-student storm p95 / stock p95",
            ratio(
                ours_storm.get("time_to_lab", {}).get("p95"),
                storm.get("stock", {}).get("time_to_lab", {}).get("p95"),
            ),
            0.6,
        ),
        Target(
            f"{storm.get('students', '?')}-student storm failures (pdal-hub)",
            ours_storm.get("failures") if ours_storm else None,
            0,
            "failures",
        ),
        Target(
            "legit login p95 under wrong-password flood (pdal-hub)",
            flood.get("pdal-hub", {}).get("login", {}).get("p95"),
            0.5,
            "s",
        ),
        Target(
            "idle server RSS / stock",
            ratio(
                memory.get("pdal-hub", {}).get("server_rss_mb", {}).get("p50"),
                memory.get("stock", {}).get("server_rss_mb", {}).get("p50"),
            ),
            1.0,
        ),
    ]
