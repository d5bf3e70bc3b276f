"""The benchmark runner works end to end, in its smallest size, on both setups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runner_tiny(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--students",
            "2",
            "--reps",
            "1",
            "--storm-reps",
            "1",
            "--flood-clients",
            "2",
            "--flood-seconds",
            "3",
            "--api-sizes",
            "20",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for setup in ("stock", "pdal-hub"):
        assert results["single"][setup]["total"]["n"] == 1
        assert results["storm"][setup]["failures"] == 0, results["storm"][setup]["errors"]
        assert results["storm"][setup]["time_to_lab"]["n"] == 2
        assert results["memory"][setup]["server_rss_mb"]["n"] == 2
        assert results["memory"][setup]["total_by_active"][0][0] == 0
        assert results["flood"][setup]["login"]["n"] >= 1
        assert results["api"]["20"][setup]["GET /users?limit=50"]["n"] == 20
    assert results["single"]["bare"]["n"] == 1
    # the phases of the single sign-in add up to the total
    phases = results["single"]["pdal-hub"]
    assert "server start" in phases and "hub spawn overhead" in phases
    text = (out / "results.md").read_text()
    assert "## Targets" in text and "| pdal-hub |" in text
    for png in ("bench.png", "storm.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # the run's users (and so their servers) are gone
    prefix = results["user_prefix"]
    assert prefix.startswith("pdt")
    leftover = [
        line for line in Path("/etc/passwd").read_text().splitlines() if line.startswith(prefix)
    ]
    assert not leftover
