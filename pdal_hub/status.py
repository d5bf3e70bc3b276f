"""`pdal-hub status`: hub up? who is active, which servers run, their memory and idle time."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .accounts import lookup_account
from .doctor import http_ok
from .hubapi import HubAPI, HubError, load_settings


@dataclass(frozen=True)
class ProcessInfo:
    ppid: int
    uid: int
    cmdline: str
    rss: int  # bytes


def server_tree(processes: Mapping[int, ProcessInfo], uid: int, marker: str) -> set[int]:
    """PIDs of `uid`'s server processes (command line contains `marker`) and their children."""
    roots = {pid for pid, p in processes.items() if p.uid == uid and marker in p.cmdline}
    children: dict[int, list[int]] = {}
    for pid, p in processes.items():
        children.setdefault(p.ppid, []).append(pid)
    tree, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo += children.get(pid, [])
    return tree


def idle_seconds(last_activity: str | None, now: datetime) -> float | None:
    """Seconds since an ISO 8601 time from the hub API, or None when never active."""
    if not last_activity:
        return None
    then = datetime.fromisoformat(last_activity.replace("Z", "+00:00"))
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (now - then).total_seconds())


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def human_bytes(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def read_processes() -> dict[int, ProcessInfo]:
    """Every process's parent, owner, command line and RSS, from /proc."""
    page = os.sysconf("SC_PAGE_SIZE")
    processes = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat_fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            uid = os.stat(f"/proc/{entry}").st_uid
            cmdline = (
                Path(f"/proc/{entry}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
            rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        processes[int(entry)] = ProcessInfo(int(stat_fields[1]), uid, cmdline, rss)
    return processes


def collect_status(config: Path, active_minutes: float) -> tuple[dict, int]:
    """The status as a dict, and the exit code (0 up, 3 hub or proxy down)."""
    settings = load_settings(config)
    api = HubAPI.from_settings(settings)
    status = {
        "hub": {"url": settings.hub_api_url, "up": api.is_up()},
        "proxy": {"url": settings.public_url, "up": http_ok(settings.public_url + "/hub/api/")},
        "active_minutes": active_minutes,
        "users": 0,
        "active": [],
        "servers": [],
    }
    if not status["hub"]["up"]:
        return status, 3
    now = datetime.now(timezone.utc)
    users = api.users()
    processes = read_processes()
    status["users"] = len(users)
    for user in sorted(users, key=lambda u: u["name"]):
        idle = idle_seconds(user.get("last_activity"), now)
        server = (user.get("servers") or {}).get("")
        if server or (idle is not None and idle <= active_minutes * 60):
            status["active"].append(user["name"])
        if not server:
            continue
        account = lookup_account(user["name"])
        pids = server_tree(processes, account.pw_uid, "singleuser") if account else set()
        status["servers"].append(
            {
                "user": user["name"],
                "state": "ready" if server.get("ready") else (server.get("pending") or "starting"),
                "started": server.get("started"),
                "idle_seconds": idle_seconds(server.get("last_activity"), now),
                "rss_bytes": sum(processes[p].rss for p in pids),
                "processes": len(pids),
            }
        )
    return status, 0 if status["proxy"]["up"] else 3


def render(status: dict) -> str:
    def up(part: str) -> str:
        return "up  " if status[part]["up"] else "DOWN"

    lines = [
        f"hub    {up('hub')}  {status['hub']['url']}",
        f"proxy  {up('proxy')}  {status['proxy']['url']}",
    ]
    if not status["hub"]["up"]:
        lines.append("The hub does not answer: run `pdal-hub doctor` to find out why.")
        return "\n".join(lines)
    active = status["active"]
    lines.append(
        f"users  {status['users']} in the hub, {len(active)} active in the last "
        f"{status['active_minutes']:g} minutes" + (f": {', '.join(active)}" if active else "")
    )
    if status["servers"]:
        total = sum(s["rss_bytes"] for s in status["servers"])
        lines.append(f"\n{'SERVER OF':<20} {'STATE':<10} {'MEMORY':>9} {'IDLE':>6}  STARTED")
        for s in status["servers"]:
            lines.append(
                f"{s['user']:<20} {s['state']:<10} {human_bytes(s['rss_bytes']):>9} "
                f"{human_duration(s['idle_seconds']):>6}  {s['started'] or '-'}"
            )
        lines.append(f"{len(status['servers'])} server(s) running, {human_bytes(total)} in all")
    else:
        lines.append("no servers running")
    return "\n".join(lines)


def cmd_status(args) -> int:
    if os.geteuid() != 0:
        print("pdal-hub status must run as root (sudo): it reads the hub's token.", file=sys.stderr)
        return 2
    try:
        status, code = collect_status(Path(args.config), args.active_minutes)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(json.dumps(status, indent=2) if args.json else render(status))
    return code


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="hub and proxy up? who is active, which servers run, memory, idle time",
        description="Show whether the hub and its proxy answer, who was active "
        "recently, and each running server with its memory (RSS of the server and "
        "its kernels) and idle time. Exit status: 0 hub and proxy up, 2 not root, "
        "3 hub or proxy down.",
    )
    parser.add_argument(
        "--config",
        default="/etc/jupyterhub/jupyterhub_config.py",
        help="the hub's config file (default: %(default)s)",
    )
    parser.add_argument(
        "--active-minutes",
        type=float,
        default=15,
        help="count a user as active when seen within this many minutes (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=cmd_status)
