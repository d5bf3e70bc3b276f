"""The benchmark's pure helpers: percentiles, summaries, ratios and target verdicts."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))

from bench.stats import (  # noqa: E402
    Target,
    p95_counting_failures,
    percentile,
    ratio,
    summarize,
    targets,
)


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([], 50, None),
        ([3.0], 95, 3.0),
        ([1.0, 2.0, 3.0], 50, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([1.0, 2.0], 100, 2.0),
        ([1.0, 2.0], 0, 1.0),
    ],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == (None if expected is None else pytest.approx(expected))


def test_summarize_empty_and_full():
    assert summarize([]) == {"n": 0, "p50": None, "p95": None, "max": None}
    assert summarize([2.0, 1.0, 3.0]) == {"n": 3, "p50": 2.0, "p95": pytest.approx(2.9), "max": 3.0}


@pytest.mark.parametrize(
    "ours, baseline, expected",
    [(1.0, 2.0, 0.5), (None, 2.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_ratio(ours, baseline, expected):
    assert ratio(ours, baseline) == expected


@pytest.mark.parametrize(
    "measured, limit, verdict",
    [
        (None, 1.0, "not measured"),
        (0.5, 0.6, "met"),
        (0.6, 0.6, "met"),
        (0.61, 0.6, "NOT met"),
        (0, 0, "met"),
        (1, 0, "NOT met"),
    ],
)
def test_target_verdict(measured, limit, verdict):
    assert Target("t", measured, limit).verdict == verdict


def test_targets_from_results():
    results = {
        "single": {"bare": {"p50": 2.0}, "pdal-hub": {"total": {"p50": 2.4}}},
        "storm": {
            "students": 12,
            "stock": {"time_to_lab": {"p95": 20.0}, "failures": 3, "times": [20.0] * 9},
            "pdal-hub": {"time_to_lab": {"p95": 10.0}, "failures": 1, "times": [10.0] * 11},
        },
        "big_storm": {"students": 40, "pdal-hub": {"failures": 0}},
        "flood": {"pdal-hub": {"login": {"p95": 0.2}}},
        "memory": {
            "stock": {"server_rss_mb": {"p50": 128.0}},
            "pdal-hub": {"server_rss_mb": {"p50": 112.0}},
        },
    }
    got = {t.name: (t.measured, t.verdict) for t in targets(results)}
    assert got == {
        "single student time-to-lab / bare JupyterLab start": (pytest.approx(1.2), "met"),
        "12-student storm p95 / stock p95": (0.5, "met"),
        "12-student storm p95 / stock p95, failed sign-ins counted as never arriving": (
            math.inf,
            "NOT met",
        ),
        "12-student storm failures (pdal-hub)": (1, "NOT met"),
        "legit login p95 under wrong-password flood (pdal-hub)": (0.2, "met"),
        "idle server RSS / stock": (pytest.approx(0.875), "met"),
        "40-student storm failures (pdal-hub)": (0, "met"),
    }


def test_targets_of_an_empty_run_are_not_measured():
    assert {t.verdict for t in targets({})} == {"not measured"}


@pytest.mark.parametrize(
    "times, failures, expected",
    [
        ([1.0] * 20, 0, 1.0),
        ([1.0] * 19, 1, 1.0),
        ([1.0] * 18, 2, math.inf),
        ([], 3, math.inf),
        ([], 0, None),
    ],
)
def test_p95_counting_failures(times, failures, expected):
    assert p95_counting_failures(times, failures) == expected


@pytest.mark.parametrize(
    "ours, baseline, expected", [(5.0, math.inf, 0.0), (math.inf, math.inf, math.inf)]
)
def test_ratio_against_never(ours, baseline, expected):
    assert ratio(ours, baseline) == expected
