"""`python -m bench`: run the scenarios on both setups and write the report.

Run as root from the repository (it creates Linux users, as the system tests do);
`bench/run.sh` builds the venv first. Everything listens on 127.0.0.1, every loop
is bounded, and everything the run creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from . import report, scenarios
from .harness import PREFIX, lab

SCENARIOS = ("single", "storm", "flood", "memory", "api")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the lab manual's stock JupyterHub against pdal-hub, side by side.",
    )
    parser.add_argument(
        "--students", type=int, default=12, help="students in the class-start storm (default 12)"
    )
    parser.add_argument(
        "--big-storm",
        type=int,
        default=0,
        help="also run a second, larger storm with this many students (e.g. 40)",
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of the single-student scenario (default 3)"
    )
    parser.add_argument(
        "--flood-clients",
        type=int,
        default=8,
        help="wrong-password clients in the flood (default 8)",
    )
    parser.add_argument(
        "--flood-seconds", type=float, default=30, help="how long the flood lasts (default 30)"
    )
    parser.add_argument(
        "--api-sizes",
        default="100,1000",
        help="users in the database for the API latency scenario (default 100,1000)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--storm-reps",
        type=int,
        default=2,
        help="storms per setup, alternating which setup goes first (default 2)",
    )
    parser.add_argument(
        "--storm-timeout",
        type=float,
        default=300,
        help="seconds a storm student waits before counting as failed (default 300)",
    )
    parser.add_argument(
        "--out", default="bench/results", help="output folder (default bench/results)"
    )
    return parser


def run_storms(the_lab, key: str, size: int, args, chosen: set[str], results: dict, log) -> dict:
    """`args.storm_reps` storms per setup in ABBA order, times pooled per setup.

    Memory is measured once, after each setup's last storm, with every server idle.
    """
    per_setup: dict[str, list] = {s.name: [] for s in the_lab.setups}
    for rep in range(args.storm_reps):
        order = the_lab.setups if rep % 2 == 0 else list(reversed(the_lab.setups))
        for setup in order:
            log(f"{size}-student storm {rep + 1}/{args.storm_reps} on {setup.name}")
            per_setup[setup.name].append(scenarios.storm(the_lab, setup, size, args.storm_timeout))
            names = [s[0] for s in the_lab.students[:size]]
            last = len(per_setup[setup.name]) == args.storm_reps
            if key == "storm" and "memory" in chosen and last:
                log(f"memory on {setup.name}")
                results.setdefault("memory", {})[setup.name] = scenarios.memory(setup, names)
            else:
                setup.hub.stop_all_servers(setup.token)
    out: dict = {"students": size, "reps": args.storm_reps, "curves": {}}
    for name, runs in per_setup.items():
        out[name] = scenarios.pool_storms(
            [summary for summary, _ in runs], [times for _, times in runs]
        )
        out["curves"][name] = [times for _, times in runs][-1]
    return out


def run_scenarios(args: argparse.Namespace, chosen: set[str], log) -> dict:
    results: dict = {}
    with lab(max(args.students, args.big_storm, 2), Path(args.out) / "logs") as the_lab:
        if "single" in chosen:
            log("single student")
            results["single"] = scenarios.single_student(the_lab, args.reps)
        storms = [("storm", args.students)] + (
            [("big_storm", args.big_storm)] if args.big_storm else []
        )
        if "storm" in chosen or "memory" in chosen:
            for key, size in storms:
                results[key] = run_storms(the_lab, key, size, args, chosen, results, log)
        if "flood" in chosen:
            results["flood"] = {"clients": args.flood_clients}
            for setup in the_lab.setups:
                log(f"wrong-password flood on {setup.name}")
                results["flood"][setup.name] = scenarios.flood(
                    the_lab, setup, args.flood_clients, args.flood_seconds, legit_logins=40
                )
        if "api" in chosen:
            sizes = [int(s) for s in args.api_sizes.split(",") if s.strip()]
            log(f"API latency with {sizes} users")
            results["api"] = scenarios.api_latency(the_lab, sizes, requests_per_call=20)
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = chosen - set(SCENARIOS)
    if unknown:
        print(
            f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    if os.geteuid() != 0:
        print(
            "The benchmark creates Linux users and starts hubs: run it as root "
            "(sudo bash bench/run.sh).",
            file=sys.stderr,
        )
        return 2
    started = time.time()

    def log(message: str) -> None:
        print(f"[bench {time.time() - started:6.0f}s] {message}", flush=True)

    results = {
        "machine": report.machine(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "command": "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "user_prefix": PREFIX,
    }
    log(f"Linux users of this run are named {PREFIX}*; they are removed at the end")
    results.update(run_scenarios(args, chosen, log))
    results["duration_s"] = round(time.time() - started)
    for path in report.write(results, Path(args.out)):
        log(f"wrote {path}")
    return 0
