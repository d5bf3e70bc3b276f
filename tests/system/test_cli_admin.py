"""`pdal-hub install` and `pdal-hub doctor`, run as a subprocess as root, on a scratch prefix.

One module-scoped installation (config, state, libs root, PAM and unit folders in
a scratch directory; the hub venv is the test venv) runs a real hub on free
ports. Each test breaks one thing on purpose, checks that doctor names it with
its fix, and repairs it; the last tests stop the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from hubharness import PREFIX, VENV_BIN, free_port, wait_for

CLI = str(VENV_BIN / "pdal-hub")


def pdal_hub(*args: str, env: dict | None = None, stdin: str | None = None):
    """Run the real command as root; returns the CompletedProcess."""
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=dict(os.environ, **(env or {})),
        cwd="/",
        timeout=900,
    )


class ScratchInstall:
    def __init__(self, root: Path, admin: str) -> None:
        self.root = root
        self.admin = admin
        self.config_dir = root / "etc"
        self.state_dir = root / "state"
        self.libs_root = root / "libs"
        self.pam_dir = root / "pam.d"
        self.unit_dir = root / "systemd"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def install_args(self) -> list[str]:
        return [
            "install",
            "--admin",
            self.admin,
            "--venv",
            sys.prefix,
            "--config-dir",
            str(self.config_dir),
            "--libs-root",
            str(self.libs_root),
            "--state-dir",
            str(self.state_dir),
            "--unit-dir",
            str(self.unit_dir),
            "--pam-dir",
            str(self.pam_dir),
        ]

    @property
    def config_file(self) -> Path:
        return self.config_dir / "jupyterhub_config.py"

    def doctor(self, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return pdal_hub(
            "doctor",
            "--config",
            str(self.config_file),
            "--venv",
            sys.prefix,
            "--pam-dir",
            str(self.pam_dir),
            *extra,
            env=env,
        )

    def drop_in(self, name: str, text: str) -> Path:
        path = self.config_dir / "jupyterhub_config.d" / name
        path.write_text(text)
        return path

    def start(self) -> None:
        log = open(self.root / "hub.log", "a")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "jupyterhub"), "-f", str(self.config_file)],
            cwd=self.state_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}"),
            start_new_session=True,
        )
        log.close()

        def up():
            assert self.proc.poll() is None, (self.root / "hub.log").read_text()[-3000:]
            try:
                return requests.get(f"http://127.0.0.1:{self.port}/hub/api/", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_for(up, 60, what="the scratch hub")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def scratch(admin):
    install = ScratchInstall(Path(tempfile.mkdtemp(prefix=f"{PREFIX}-install-")), admin[0])
    try:
        yield install
    finally:
        install.stop()
        shutil.rmtree(install.root, ignore_errors=True)


def findings(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def test_install_into_scratch_prefix_then_doctor_passes(scratch):
    dry = pdal_hub(*scratch.install_args(), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would: wrote" in dry.stdout
    assert not scratch.config_dir.exists()

    first = pdal_hub(*scratch.install_args())
    assert first.returncode == 0, first.stdout + first.stderr
    for step in ("== shared-library root", "== hub state", "== first admin"):
        assert step in first.stdout
    assert "systemd does not manage this hub" in first.stdout
    for name in ("jupyterhub_cookie_secret", "jupyterhub.sqlite", "pdal-hub-cli.token"):
        st = (scratch.state_dir / name).stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600), name
    assert stat.S_IMODE(scratch.state_dir.stat().st_mode) == 0o700

    again = pdal_hub(*scratch.install_args())
    assert again.returncode == 0, again.stderr
    assert "Nothing to change: already installed." in again.stdout

    with scratch.config_file.open("a") as f:
        f.write("# an admin's edit\n")
    edited = pdal_hub(*scratch.install_args())
    assert "kept your edited" in edited.stdout
    backups = list(scratch.config_dir.glob("jupyterhub_config.py.bak-*"))
    assert len(backups) == 1 and "an admin's edit" in backups[0].read_text()
    after = pdal_hub(*scratch.install_args())
    assert f"Backups of files you had edited are kept: {backups[0]}" in after.stdout

    scratch.drop_in(
        "50-ports.py",
        f'c.JupyterHub.bind_url = "http://127.0.0.1:{scratch.port}"\n'
        f"c.JupyterHub.hub_port = {free_port()}\n"
        f'c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"\n',
    )
    scratch.start()
    result = scratch.doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No problems found." in result.stdout

    report = json.loads(scratch.doctor("--json").stdout)
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {
        "config",
        "venv",
        "kernels",
        "proxy",
        "libs-root",
        "state",
        "pam",
        "hub",
        "ports",
    }


def test_doctor_names_a_venv_students_cannot_execute(scratch, tmp_path):
    private = tmp_path / "root-like"
    private.mkdir(mode=0o700)
    venv = private / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    result = pdal_hub(
        "doctor",
        "--config",
        str(scratch.config_file),
        "--venv",
        str(venv),
        "--pam-dir",
        str(scratch.pam_dir),
    )
    assert result.returncode == 1
    assert "students cannot execute the hub venv's python" in result.stdout
    assert "blocked by" in result.stdout and str(private) in result.stdout
    assert "/usr/bin/python3 -m venv" in result.stdout


def test_doctor_names_a_missing_proxy(scratch):
    drop_in = scratch.drop_in(
        "60-proxy.py", f'c.ConfigurableHTTPProxy.command = ["{PREFIX}-no-such-proxy"]\n'
    )
    try:
        result = scratch.doctor()
    finally:
        drop_in.unlink()
    assert result.returncode == 1
    assert f"the proxy '{PREFIX}-no-such-proxy' is missing" in result.stdout
    assert "npm install -g configurable-http-proxy" in result.stdout


def test_doctor_names_missing_and_broken_kernels(scratch):
    share = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-kernels-"))
    os.chmod(share, 0o755)  # an unprivileged account lists the kernels
    kernel = share / "kernels" / f"{PREFIX}broken"
    kernel.mkdir(parents=True, mode=0o755)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/nonexistent/bin/python", "-f", "{connection_file}"],
                "display_name": "broken",
                "language": "python",
            }
        )
    )
    try:
        result = scratch.doctor(
            "--kernels", f"python3,{PREFIX}missing", env={"JUPYTER_PATH": str(share)}
        )
    finally:
        shutil.rmtree(share)
    assert result.returncode == 1
    problems = "\n".join(findings(result))
    assert f"kernel '{PREFIX}missing' is missing" in problems
    assert f"kernel '{PREFIX}broken' is broken" in problems
    assert "/nonexistent/bin/python" in problems
    assert "python3" not in problems


def test_doctor_names_libs_root_and_config_writable_by_students(scratch):
    java = scratch.libs_root / "java"
    drop_in = scratch.drop_in("60-site.py", "# a site setting\n")
    os.chmod(java, 0o777)
    os.chown(scratch.libs_root / "r", 65534, 65534)
    os.chmod(drop_in, 0o666)
    try:
        result = scratch.doctor()
    finally:
        os.chmod(java, 0o755)
        os.chown(scratch.libs_root / "r", 0, 0)
        drop_in.unlink()
    assert result.returncode == 1
    problems = "\n".join(findings(result))
    assert f"{java} can be changed by others" in problems
    assert f"{scratch.libs_root / 'r'} can be changed by others (owned by uid 65534" in problems
    assert f"the hub config {drop_in} can be changed by others" in problems
    assert f"chmod -R go-w {java}" in result.stdout


def test_doctor_names_a_config_that_does_not_load(scratch):
    drop_in = scratch.drop_in("70-broken.py", "c.JupyterHub.bind_url = (\n")
    try:
        result = scratch.doctor()
    finally:
        drop_in.unlink()
    assert result.returncode == 1
    assert f"The hub config {scratch.config_file} does not load" in result.stdout
    assert "SyntaxError" in result.stdout
    assert "70-broken.py" in result.stdout


def test_doctor_names_state_files_readable_by_others(scratch):
    secret = scratch.state_dir / "jupyterhub_cookie_secret"
    os.chmod(secret, 0o644)
    try:
        result = scratch.doctor()
    finally:
        os.chmod(secret, 0o600)
    assert result.returncode == 1
    assert f"state file {secret} is readable or writable by others" in result.stdout
    assert f"chmod 0600 {secret}" in result.stdout


def test_doctor_names_a_missing_pam_service(scratch):
    pam = scratch.pam_dir / "pdal-hub"
    saved = pam.read_text()
    pam.unlink()
    try:
        result = scratch.doctor()
    finally:
        pam.write_text(saved)
    assert result.returncode == 1
    assert f"the PAM service {scratch.pam_dir}/pdal-hub is missing" in result.stdout


def test_doctor_names_a_stopped_hub_and_a_taken_port(scratch):
    scratch.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", scratch.port))
        squatter.listen()
        result = scratch.doctor()
    assert result.returncode == 1
    problems = "\n".join(findings(result))
    assert "the hub does not answer" in problems
    assert f"port {scratch.port} (public) is in use by" in problems
    assert f"(pid {os.getpid()})" in problems
