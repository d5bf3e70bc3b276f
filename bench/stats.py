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


def p95_counting_failures(times: list[float], failures: int) -> float | None:
    """p95 time-to-lab where each failed sign-in counts as never arriving (infinity).

    Nearest rank, so that one failure among twenty does not turn the p95 into infinity.
    """
    values = sorted(times) + [math.inf] * failures
    if not values:
        return None
    return values[math.ceil(0.95 * len(values)) - 1]


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """ours / baseline, or None when either is missing or the baseline is zero."""
    if ours is None or not baseline:
        return None
    if math.isinf(baseline):
        return math.inf if math.isinf(ours) else 0.0
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
    found = [
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
            f"{storm.get('students', '?')}-student storm p95 / stock p95, failed sign-ins "
            "counted as never arriving",
            ratio(
                _p95_all(ours_storm),
                _p95_all(storm.get("stock", {})),
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
    big = results.get("big_storm")
    if big:
        found.append(
            Target(
                f"{big['students']}-student storm failures (pdal-hub)",
                big.get("pdal-hub", {}).get("failures"),
                0,
                "failures",
            )
        )
    return found


def _p95_all(storm_summary: dict) -> float | None:
    if "times" not in storm_summary:
        return None
    return p95_counting_failures(storm_summary["times"], storm_summary.get("failures", 0))
