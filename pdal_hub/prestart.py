"""Start a course's servers shortly before a lecture, so the class-start storm never happens.

`pdal-hub servers start --group COURSE` asks the hub to start the server of every
member of the hub group COURSE who has none (the hub starts them a few at a time,
see pdal_hub.faststart). `pdal-hub servers schedule` installs a systemd timer that
runs that command at the lecture's times. Pre-started servers are ordinary
servers: the idle culler stops those nobody uses, like any other.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .hubapi import CLI_SERVICE, HubAPI, HubError, load_settings

#: What `pdal-hub servers start` needs on top of the CLI service's own role.
PRESTART_SCOPES = ["list:users", "read:users", "read:servers", "read:groups", "servers"]

GROUP_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_CONFIG = "/etc/jupyterhub/jupyterhub_config.py"


def prestart_role(service: str = CLI_SERVICE) -> dict:
    """The role that lets `service` (default: the pdal-hub command's) start servers."""
    return {
        "name": "pdal-hub-prestart",
        "description": "Start a course's servers before a lecture (pdal-hub servers start)",
        "scopes": list(PRESTART_SCOPES),
        "services": [service],
    }


@dataclass
class StartReport:
    """What `start_group` did, member by member."""

    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def server_state(user: dict | None) -> str:
    """'missing' (not a hub user), 'running' (running or starting) or 'stopped'."""
    if user is None:
        return "missing"
    server = (user.get("servers") or {}).get("")
    return "running" if server else "stopped"


def check_group_name(group: str) -> str:
    """`group` if it can name a systemd unit; ValueError saying what is allowed otherwise."""
    if not GROUP_NAME_PATTERN.fullmatch(group):
        raise ValueError(
            f"Group name {group!r} cannot be scheduled: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)."
        )
    return group


def start_group(api: HubAPI, group: str, parallel: int = 10) -> StartReport:
    """Ask the hub to start the server of each member of `group` that has none.

    Up to `parallel` requests are in flight at once: the hub answers a start request
    only when the server is up (or after 10 s), and it queues the starts itself.
    """
    model = api.group(group)
    if model is None:
        raise HubError(
            f"The hub has no group {group!r}. Create it and add the course's students with "
            "`pdal-hub users import` (group column) or the admin panel."
        )

    def start_one(name: str) -> tuple[str, str, str]:
        try:
            state = server_state(api.user(name))
            if state == "missing":
                return name, "failed", "not a hub user"
            if state == "stopped":
                api.request("POST", f"/users/{urllib.parse.quote(name)}/server", {})
                return name, "started", ""
            return name, "running", ""
        except HubError as e:
            return name, "failed", str(e)

    report = StartReport()
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        for name, outcome, reason in pool.map(start_one, sorted(model.get("users", []))):
            if outcome == "started":
                report.started.append(name)
            elif outcome == "running":
                report.already_running.append(name)
            else:
                report.failed[name] = reason
    return report


def unit_names(group: str) -> tuple[str, str]:
    base = f"pdal-hub-prestart-{check_group_name(group)}"
    return f"{base}.service", f"{base}.timer"


def render_units(group: str, on_calendar: str, command: list[str]) -> tuple[str, str]:
    """Text of the systemd service and timer that start `group`'s servers at `on_calendar`."""
    if not on_calendar.strip() or "\n" in on_calendar:
        raise ValueError("--on-calendar needs one systemd calendar spec, like 'Mon,Wed 08:05'")
    service_name, _ = unit_names(group)
    service = f"""[Unit]
Description=Start the servers of course {group} before its lecture (pdal-hub)
After=jupyterhub.service
Requisite=jupyterhub.service

[Service]
Type=oneshot
ExecStart={shlex.join(command)}
"""
    timer = f"""[Unit]
Description=Start the servers of course {group} before its lecture (pdal-hub)

[Timer]
OnCalendar={on_calendar.strip()}
Unit={service_name}
Persistent=false

[Install]
WantedBy=timers.target
"""
    return service, timer


def pdal_hub_executable() -> str:
    """The `pdal-hub` command of this venv (the hub's), for a unit's ExecStart."""
    path = Path(sys.prefix) / "bin" / "pdal-hub"
    return str(path) if path.exists() else "pdal-hub"


def cmd_start(args) -> int:
    try:
        api = HubAPI.from_settings(load_settings(Path(args.config)))
        report = start_group(api, args.group, args.parallel)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    for label, names in (("started", report.started), ("already running", report.already_running)):
        print(f"{label}: {len(names)}" + (f" ({', '.join(names)})" if names else ""))
    for name, reason in report.failed.items():
        print(f"failed: {name}: {reason}", file=sys.stderr)
    if report.started:
        print(
            "The hub starts them a few at a time; `pdal-hub status` shows progress. "
            "Servers nobody uses are stopped by the idle culler."
        )
    return 1 if report.failed else 0


def cmd_schedule(args) -> int:
    command = [
        pdal_hub_executable(),
        "servers",
        "start",
        "--group",
        args.group,
        "--config",
        args.config,
    ]
    try:
        service, timer = render_units(args.group, args.on_calendar, command)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    service_name, timer_name = unit_names(args.group)
    unit_dir = Path(args.unit_dir)
    if os.geteuid() != 0 and not args.dry_run:
        print(
            "Installing a timer needs root (try: sudo pdal-hub servers schedule ...).",
            file=sys.stderr,
        )
        return 2
    for name, text in ((service_name, service), (timer_name, timer)):
        if args.dry_run:
            print(f"# would write {unit_dir / name}\n{text}")
        else:
            (unit_dir / name).write_text(text)
            print(f"wrote {unit_dir / name}")
    print(f"Enable it with: systemctl daemon-reload && systemctl enable --now {timer_name}")
    return 0


def register(subparsers) -> None:
    servers = subparsers.add_parser(
        "servers",
        help="start a course's servers before a lecture, now or on a timer",
        description="Start the servers of a hub group's members ahead of time, so students "
        "find JupyterLab ready. Exit status: 0 done, 1 some servers failed, 2 wrong usage, "
        "3 the hub cannot be reached.",
    )
    sub = servers.add_subparsers(dest="servers_command", required=True)
    start = sub.add_parser("start", help="start the servers of a group's members now")
    schedule = sub.add_parser(
        "schedule",
        help="install a systemd timer that runs `servers start` before each lecture",
        description="Write pdal-hub-prestart-GROUP.service and .timer. Pick a time a few "
        "minutes before the lecture; servers nobody uses are culled after the idle timeout.",
    )
    for parser in (start, schedule):
        parser.add_argument("--group", required=True, help="the hub group of the course")
        parser.add_argument(
            "--config", default=DEFAULT_CONFIG, help="the hub's config file (default: %(default)s)"
        )
    start.add_argument(
        "--parallel",
        type=int,
        default=10,
        help="start requests in flight at once (default %(default)s; the hub queues starts)",
    )
    schedule.add_argument(
        "--on-calendar",
        required=True,
        help="systemd calendar spec of the start times, e.g. 'Mon,Wed 08:05'",
    )
    schedule.add_argument(
        "--unit-dir",
        default="/etc/systemd/system",
        help="where to write the units (default: %(default)s)",
    )
    schedule.add_argument("--dry-run", action="store_true", help="only print the units")
    start.set_defaults(func=cmd_start)
    schedule.set_defaults(func=cmd_schedule)
