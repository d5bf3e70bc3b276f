"""Both hubs of a benchmark run: the manual's stock setup and pdal-hub, same users, same venv.

Reuses the system tests' RealHub (pdal-hub from its shipped config) and LinuxUsers
(prefixed accounts, removed afterwards); adds StockHub, which runs the lab manual's
section 6 config with only ports, state paths and the admin's name changed.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "system"))

import hubharness  # noqa: E402
from hubharness import (  # noqa: E402
    VENV_BIN,
    LinuxUsers,
    RealHub,
    free_port,
    post_login_form,
    wait_for,
)

STOCK_CONFIG = Path(__file__).with_name("stock_jupyterhub_config.py.in")
PREFIX = hubharness.PREFIX


class StockHub(RealHub):
    """JupyterHub with the lab manual's configuration (PAM service "login", manual's hook)."""

    def __init__(self, workdir: Path, admin: str) -> None:
        super().__init__(workdir, admin, config_source=STOCK_CONFIG)

    def _write_config(self, extra_config: str, *_source) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            STOCK_CONFIG.read_text()
            + "\n# benchmark: ports, state paths and admin only\n"
            + self.ports_state_and_admin()
            + extra_config
            + "\n"
        )


def proxy_process(hub: RealHub) -> psutil.Process | None:
    """The configurable-http-proxy the hub started (its child), if any."""
    for child in psutil.Process(hub.proc.pid).children():
        try:
            if any("configurable-http-proxy" in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


@dataclass
class Setup:
    """One hub under test, with the admin's token and the database path."""

    name: str
    hub: RealHub
    token: str = ""

    @property
    def db_path(self) -> Path:
        return self.hub.state_dir / "jupyterhub.sqlite"


@dataclass
class Lab:
    """Everything a run creates: admin, students, and both setups."""

    workdir: Path
    admin: tuple[str, str]
    students: list[tuple[str, str]] = field(default_factory=list)
    setups: list[Setup] = field(default_factory=list)

    def setup(self, name: str) -> Setup:
        return next(s for s in self.setups if s.name == name)


def add_students(setup: Setup, names: list[str]) -> None:
    r = setup.hub.api("POST", "/users", setup.token, json={"usernames": names})
    if r.status_code not in (201, 409):
        raise RuntimeError(f"{setup.name}: adding students failed: {r.status_code} {r.text[:300]}")


@contextmanager
def lab(students: int, logs_dir: Path | None = None):
    """Create the users, start both hubs, add the students; undo it all on exit.

    The hubs' logs are copied to `logs_dir` (if given) before their folders are removed.
    """
    users = LinuxUsers()
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-bench-"))
    hubs: list[RealHub] = []
    try:
        password = secrets.token_urlsafe(12)
        admin = (users.create("adm", password), password)
        result = Lab(workdir, admin)
        for i in range(students):
            pw = secrets.token_urlsafe(12)
            result.students.append((users.create(f"s{i}", pw), pw))
        for name, hub_class in (("stock", StockHub), ("pdal-hub", RealHub)):
            (workdir / name).mkdir()
            hub = hub_class(workdir / name, admin=admin[0])
            hubs.append(hub)
            hub.start(timeout=120)
            setup = Setup(name, hub, hub.admin_token(password))
            add_students(setup, [s[0] for s in result.students])
            result.setups.append(setup)
        yield result
    finally:
        for hub in hubs:
            stop_servers_quietly(hub, result.setups if "result" in locals() else [])
            hub.cleanup(log_dir=logs_dir)
        users.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def stop_servers_quietly(hub: RealHub, setups: list[Setup]) -> None:
    setup = next((s for s in setups if s.hub is hub), None)
    if setup is None or hub.proc is None or hub.proc.poll() is not None:
        return
    try:
        hub.stop_all_servers(setup.token)
    except Exception as e:  # noqa: BLE001 (best effort before the processes are killed)
        print(f"warning: stopping {setup.name}'s servers: {e}", file=sys.stderr)


def stop_server(setup: Setup, username: str, timeout: float = 60) -> None:
    setup.hub.api("DELETE", f"/users/{username}/server", setup.token)
    wait_for(
        lambda: not setup.hub.api("GET", f"/users/{username}", setup.token).json().get("servers"),
        timeout,
        interval=0.2,
        what=f"{username}'s server to stop",
    )


__all__ = [
    "Lab",
    "Setup",
    "StockHub",
    "free_port",
    "lab",
    "post_login_form",
    "proxy_process",
    "stop_server",
    "PREFIX",
    "VENV_BIN",
]
