"""The wheel is what users install: it carries config, unit and PAM file, and runs a hub."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hubharness import PREFIX, RealHub

from pdal_hub.install import InstallPaths, render_unit

REPO = Path(__file__).parents[2]


def test_unit_file_verifies_and_keeps_servers_on_restart(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = render_unit(InstallPaths(venv=Path(sys.prefix)))
    unit_file = tmp_path / "jupyterhub.service"
    unit_file.write_text(unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit_file)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""
    assert "KillMode=process" in unit
    assert f"ExecStart={sys.prefix}/bin/jupyterhub -f /etc/jupyterhub/jupyterhub_config.py" in unit


@pytest.fixture
def fresh_venv():
    """A venv from the system Python under /opt, so students can execute it."""
    venv = Path(f"/opt/{PREFIX}-fresh-venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def test_wheel_installs_into_fresh_venv_and_serves_a_student(fresh_venv, linux_users, tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir), str(REPO)],
        check=True,
    )
    (wheel,) = wheel_dir.glob("pdal_hub-*.whl")
    subprocess.run([fresh_venv / "bin/pip", "install", "-q", str(wheel)], check=True)
    os.chmod(fresh_venv, 0o755)

    def shipped(kind: str) -> Path:
        out = subprocess.run(
            [fresh_venv / "bin/pdal-hub", "files", kind], check=True, capture_output=True, text=True
        )
        return Path(out.stdout.strip())

    site = fresh_venv / "lib"
    for kind in ("unit", "config", "pam"):
        assert site in shipped(kind).parents, f"{kind} is not inside the installed package"
    assert "KillMode=process" in shipped("unit").read_text()

    admin_password = secrets.token_urlsafe(12)
    admin = linux_users.create("wadm", admin_password)
    student_password = secrets.token_urlsafe(12)
    student = linux_users.create("wstu", student_password)
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-wheel-"))
    hub = RealHub(workdir, admin, venv_bin=fresh_venv / "bin", config_source=shipped("config"))
    try:
        # as `pdal-hub install --start` from a root shell: the venv is not on PATH
        hub.start(env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        token = hub.admin_token(admin_password)
        assert hub.api("POST", "/users", token, json={"usernames": [student]}).status_code == 201
        session, response = hub.login(student, student_password)
        assert response.status_code == 302
        session.get(f"{hub.url}/hub/spawn", timeout=60)
        hub.wait_server_ready(student, token)
        assert session.get(f"{hub.url}/user/{student}/lab", timeout=60).status_code == 200
        hub.stop_all_servers(token)
    finally:
        hub.cleanup()
