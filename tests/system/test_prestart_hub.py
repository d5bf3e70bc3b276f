"""A real hub starts a course's servers on command, in line; the culler stops unused ones."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hubharness import wait_for

from pdal_hub.cli import main
from pdal_hub.hubapi import CLI_TOKEN_NAME, HubAPI, read_token
from pdal_hub.install import InstallPaths, render_unit
from pdal_hub.prestart import start_group


@pytest.fixture
def course(linux_users, hub, admin_token):
    """Three students of a new hub group."""
    group = f"course{secrets.token_hex(2)}"
    names = []
    for i in range(3):
        name = linux_users.create(f"c{secrets.token_hex(2)}{i}", secrets.token_urlsafe(12))
        names.append(name)
    assert hub.api("POST", "/users", admin_token, json={"usernames": names}).status_code == 201
    assert hub.api("POST", f"/groups/{group}", admin_token).status_code == 201
    r = hub.api("POST", f"/groups/{group}/users", admin_token, json={"users": names})
    assert r.status_code == 200, r.text
    yield group, names
    for name in names:
        hub.api("DELETE", f"/users/{name}/server", admin_token)


def test_start_group_starts_every_member_in_line(hub, admin_token, course):
    group, names = course
    api = HubAPI(f"{hub.url}/hub/api", read_token(hub.state_dir / CLI_TOKEN_NAME))
    report = start_group(api, group)
    assert sorted(report.started) == sorted(names) and not report.failed
    for name in names:
        hub.wait_server_ready(name, admin_token, timeout=180)
    # the shipped default lets one server per core start at once: on a 2-core machine the
    # third waited in line (the log says so; its page said how many were ahead)
    log = hub.log()
    assert re.search(r"Spawning \S*/pdal-hub-singleuser", log)
    waited = [n for n in names if f"{n}'s server waits for a start slot" in log]
    if (os.cpu_count() or 1) < len(names):
        assert waited, log[-3000:]
    again = start_group(api, group)
    assert sorted(again.already_running) == sorted(names) and not again.started
    model = hub.api("GET", f"/users/{names[0]}", admin_token).json()
    assert model["servers"][""]["ready"]


def test_scheduled_units_verify_with_the_hubs_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    (tmp_path / "jupyterhub.service").write_text(render_unit(InstallPaths(venv=Path(sys.prefix))))
    args = ["servers", "schedule", "--group", "ds101", "--on-calendar", "Mon,Wed 08:05"]
    assert main(args + ["--unit-dir", str(tmp_path)]) == 0
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "pdal-hub-prestart-ds101.timer"),
            str(tmp_path / "pdal-hub-prestart-ds101.service"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    service = (tmp_path / "pdal-hub-prestart-ds101.service").read_text()
    assert f"ExecStart={sys.prefix}/bin/pdal-hub servers start --group ds101 " in service


def test_a_prestarted_server_nobody_uses_is_culled(hub, admin_token, course, tmp_path):
    """The shipped idle culler, run with a short timeout, stops a pre-started idle server."""
    group, names = course
    api = HubAPI(f"{hub.url}/hub/api", read_token(hub.state_dir / CLI_TOKEN_NAME))
    start_group(api, group)
    for name in names:
        hub.wait_server_ready(name, admin_token, timeout=180)
    culler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--url={hub.url}/hub/api",
            "--timeout=5",
            "--cull-every=2",
            "--concurrency=2",
        ],
        env=dict(os.environ, JUPYTERHUB_API_TOKEN=admin_token),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for name in names:
            wait_for(
                lambda n=name: not hub.api("GET", f"/users/{n}", admin_token).json().get("servers"),
                90,
                interval=1,
                what=f"the culler to stop {name}'s unused server",
            )
    finally:
        culler.terminate()
        culler.wait(15)
