"""Privacy, state and fault recovery of a real hub with real students.

Hub restart with a running kernel is proven in test_core_hub.py; the symlink
attack on ~/notebooks there too. This module adds the rest of issue 5's list.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from hubharness import PREFIX, RealHub, pids_of_uid, run, run_code, wait_for

from pdal_hub.resources import read_data


def start_server(hub: RealHub, name: str, token: str) -> None:
    r = hub.api("POST", f"/users/{name}/server", token, timeout=60)
    assert r.status_code in (201, 202), r.text
    hub.wait_server_ready(name, token)


def user_token(hub: RealHub, name: str, password: str) -> str:
    session, response = hub.login(name, password)
    assert response.status_code == 302, response.text[:300]
    r = session.post(
        f"{hub.url}/hub/api/users/{name}/tokens",
        json={"note": "security tests", "expires_in": 3600},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["token"]


def test_state_is_root_only_and_secrets_stay_out_of_logs(hub, admin_token):
    state = hub.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("jupyterhub_cookie_secret", "jupyterhub.sqlite"):
        st = (state / name).stat()
        assert st.st_uid == 0
        assert stat.S_IMODE(st.st_mode) == 0o600, f"{name} has mode {oct(st.st_mode)}"
    secret = (state / "jupyterhub_cookie_secret").read_text().strip()
    log = hub.log()
    assert secret not in log
    assert admin_token not in log
    unit = read_data("unit")
    assert "Environment=" not in unit or "TOKEN" not in unit and "SECRET" not in unit
    assert "cookie_secret =" not in read_data("config")


def test_student_cannot_read_another_students_notebooks(hub, student, linux_users, admin_token):
    owner, owner_password = student
    other_password = secrets.token_urlsafe(12)
    other = linux_users.create("peek", other_password)
    assert hub.api("POST", "/users", admin_token, json={"usernames": [other]}).status_code == 201
    start_server(hub, owner, admin_token)
    notebooks = Path(os.path.expanduser(f"~{owner}")) / "notebooks"
    run(["runuser", "-u", owner, "--", "sh", "-c", f"echo secret-answer > {notebooks}/hw.py"])

    as_other = subprocess.run(
        ["runuser", "-u", other, "--", "cat", str(notebooks / "hw.py")],
        capture_output=True,
        text=True,
    )
    assert as_other.returncode != 0 and "Permission denied" in as_other.stderr
    listing = subprocess.run(
        ["runuser", "-u", other, "--", "ls", str(notebooks)], capture_output=True, text=True
    )
    assert listing.returncode != 0

    # Nor through the hub: the other student's token does not open the owner's server.
    token = user_token(hub, other, other_password)
    r = requests.get(
        f"{hub.url}/user/{owner}/api/contents/hw.py",
        headers={"Authorization": f"token {token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code in (302, 403, 404), r.status_code
    assert "secret-answer" not in r.text
    hub.api("DELETE", f"/users/{owner}/server", admin_token)


def test_hard_linked_notebooks_to_a_root_file_is_not_touched(hub, student, admin_token):
    name, _ = student
    victim = Path(tempfile.mkstemp(prefix=f"{PREFIX}-rootfile-", dir="/var/tmp")[1])
    try:
        os.chmod(victim, 0o644)
        link = Path(os.path.expanduser(f"~{name}")) / "notebooks"
        as_student = subprocess.run(
            ["runuser", "-u", name, "--", "ln", str(victim), str(link)], capture_output=True
        )
        if as_student.returncode != 0:  # fs.protected_hardlinks stops the student: simulate it
            os.link(victim, link)
        r = hub.api("POST", f"/users/{name}/server", admin_token, timeout=60)
        assert r.status_code >= 400 or wait_for(
            lambda: not hub.api("GET", f"/users/{name}", admin_token).json()["pending"], 30
        )
        assert not hub.api("GET", f"/users/{name}", admin_token).json()["servers"]
        st = victim.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    finally:
        victim.unlink()
        link.unlink(missing_ok=True)


def test_killed_proxy_is_restarted_with_routes(hub, student, admin_token):
    name, _ = student
    start_server(hub, name, admin_token)
    status = f"{hub.url}/user/{name}/api/status"
    headers = {"Authorization": f"token {admin_token}"}
    assert requests.get(status, headers=headers, timeout=30).status_code == 200
    pid_file = hub.state_dir / "jupyterhub-proxy.pid"
    old_pid = int(pid_file.read_text())
    os.kill(old_pid, signal.SIGKILL)

    def proxied():
        try:
            return requests.get(status, headers=headers, timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(proxied, 60, interval=0.5, what="the proxy to come back with the route")
    assert int(pid_file.read_text()) != old_pid
    hub.api("DELETE", f"/users/{name}/server", admin_token)


def test_dead_server_is_shown_stopped_and_starts_again(hub, student, admin_token):
    name, _ = student
    start_server(hub, name, admin_token)
    uid = Path(os.path.expanduser(f"~{name}")).stat().st_uid
    for pid in pids_of_uid(uid):
        os.kill(pid, signal.SIGKILL)
    # the hub notices within Spawner.poll_interval (10 s in the shipped config)
    wait_for(
        lambda: not hub.api("GET", f"/users/{name}", admin_token).json()["servers"],
        30,
        what=f"the hub to see {name}'s server stopped",
    )
    start_server(hub, name, admin_token)
    assert run_code(hub, name, admin_token, "print(6 * 7)").strip() == "42"
    hub.api("DELETE", f"/users/{name}/server", admin_token)


@pytest.mark.parametrize(
    "drop_in, shown",
    [
        ("c.JupyterHub.bind_url = ", "SyntaxError"),
        ("c.PdalAuthenticator.failures_per_pair = 'five'", "failures_per_pair"),
    ],
)
def test_hub_refuses_to_start_with_broken_config(admin, drop_in, shown):
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-broken-"))
    broken = RealHub(workdir, admin=admin[0])
    (broken.config_dir / "jupyterhub_config.d" / "90-broken.py").write_text(drop_in + "\n")
    try:
        with pytest.raises(RuntimeError) as failed:
            broken.start(timeout=60)
        assert shown in str(failed.value)
        assert broken.proc.returncode != 0
        with pytest.raises(requests.ConnectionError):
            requests.get(broken.url, timeout=5)
    finally:
        broken.cleanup()
