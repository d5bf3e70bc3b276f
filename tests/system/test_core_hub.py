"""The core promises of pdal-hub, against a real hub with real PAM users."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
from hubharness import PREFIX, execute, run_code, wait_for


def test_student_logs_in_only_after_admin_adds_them(hub, linux_users, admin_token):
    password = secrets.token_urlsafe(12)
    name = linux_users.create("late", password)

    _, refused = hub.login(name, password)
    assert refused.status_code == 403

    r = hub.api("POST", "/users", admin_token, json={"usernames": [name]})
    assert r.status_code == 201, r.text
    _, accepted = hub.login(name, password)
    assert accepted.status_code == 302

    r = hub.api("DELETE", f"/users/{name}", admin_token)
    assert r.status_code == 204
    _, revoked = hub.login(name, password)
    assert revoked.status_code == 403


def test_wrong_password_is_refused(hub, student):
    name, password = student
    _, response = hub.login(name, password + "x")
    assert response.status_code == 403


def test_unknown_account_is_refused(hub):
    _, response = hub.login(f"{PREFIX}nobody", "whatever-password")
    assert response.status_code == 403


def test_root_cannot_be_added_or_log_in(hub, admin_token):
    r = hub.api("POST", "/users", admin_token, json={"usernames": ["root"]})
    assert r.status_code == 400
    assert "reserved account" in r.json()["message"]
    _, response = hub.login("root", "not-the-password")
    assert response.status_code == 403


def test_system_account_cannot_be_added_or_log_in(hub, linux_users, admin_token):
    password = secrets.token_urlsafe(12)
    name = linux_users.create("sys", password, system=True)
    r = hub.api("POST", "/users", admin_token, json={"usernames": [name]})
    assert r.status_code == 400
    assert "system account" in r.json()["message"]
    _, response = hub.login(name, password)
    assert response.status_code == 403
    assert f"Login refused for {name}" not in hub.log() or "system account" in hub.log()


def test_adding_a_name_without_linux_account_says_what_to_do(hub, admin_token):
    name = f"{PREFIX}ghost"
    r = hub.api("POST", "/users", admin_token, json={"usernames": [name]})
    assert r.status_code == 400
    message = r.json()["message"]
    assert f"There is no Linux account named '{name}'" in message
    assert "adduser" in message
    assert hub.api("GET", f"/users/{name}", admin_token).status_code == 404


def test_student_gets_lab_in_private_notebooks_with_shared_libraries(hub, student, admin_token):
    name, password = student
    session, response = hub.login(name, password)
    assert response.status_code == 302
    session.get(f"{hub.url}/hub/spawn", timeout=60)
    hub.wait_server_ready(name, admin_token)

    lab = session.get(f"{hub.url}/user/{name}/lab", timeout=60)
    assert lab.status_code == 200
    assert "JupyterLab" in lab.text

    home = Path(os.path.expanduser(f"~{name}"))
    notebooks = home / "notebooks"
    st = notebooks.lstat()
    assert stat.S_ISDIR(st.st_mode)
    assert st.st_uid == os.stat(home).st_uid
    assert stat.S_IMODE(st.st_mode) == 0o700

    created = session.put(
        f"{hub.url}/user/{name}/api/contents/probe.txt",
        json={"type": "file", "format": "text", "content": "hello"},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path=f"/user/{name}/")},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert (notebooks / "probe.txt").read_text() == "hello"

    output = run_code(
        hub,
        name,
        admin_token,
        "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
        "['PYTHONPATH', 'JJAVA_CLASSPATH', 'CLASSPATH', 'R_LIBS_SITE', 'VIRTUAL_ENV', 'USER']}));"
        "print(os.getcwd())",
    )
    env_line, cwd = output.strip().splitlines()
    env = json.loads(env_line)
    assert cwd == str(notebooks)
    assert env["USER"] == name
    assert env["PYTHONPATH"] == f"{hub.libs_root}/python"
    assert env["JJAVA_CLASSPATH"] == f"{hub.libs_root}/java/*"
    assert env["CLASSPATH"] == f"{hub.libs_root}/java/*"
    assert env["R_LIBS_SITE"] == f"/usr/local/lib/R/site-library:%S:{hub.libs_root}/r"
    assert env["VIRTUAL_ENV"] is None


def test_symlinked_notebooks_to_root_dir_is_not_chowned(hub, student, admin_token):
    name, _ = student
    target = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-rootdir-", dir="/var/tmp"))
    try:
        os.chmod(target, 0o755)
        link = Path(os.path.expanduser(f"~{name}")) / "notebooks"
        subprocess.run(
            ["runuser", "-u", name, "--", "ln", "-s", str(target), str(link)], check=True
        )

        r = hub.api("POST", f"/users/{name}/server", admin_token, timeout=60)
        assert r.status_code >= 400 or wait_for(
            lambda: not hub.api("GET", f"/users/{name}", admin_token).json()["pending"], 30
        )
        user = hub.api("GET", f"/users/{name}", admin_token).json()
        assert not user["servers"], "a server started on a symlinked notebooks folder"
        assert os.stat(target).st_uid == 0
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
        assert "symbolic link or not a directory" in hub.log()
    finally:
        os.rmdir(target)


def test_hub_restart_keeps_running_server_and_its_kernel(hub, student, admin_token):
    name, _ = student
    r = hub.api("POST", f"/users/{name}/server", admin_token, timeout=60)
    assert r.status_code in (201, 202), r.text
    hub.wait_server_ready(name, admin_token)
    base = f"{hub.url}/user/{name}/api"
    headers = {"Authorization": f"token {admin_token}"}
    kernel = requests.post(f"{base}/kernels", json={"name": "python3"}, headers=headers, timeout=60)
    kernel_id = kernel.json()["id"]
    execute(hub, name, admin_token, kernel_id, "unsaved = 41 + 1")

    hub.restart()

    assert hub.api("GET", f"/users/{name}", admin_token).json()["servers"][""]["ready"]
    assert execute(hub, name, admin_token, kernel_id, "print(unsaved)").strip() == "42"
    requests.delete(f"{base}/kernels/{kernel_id}", headers=headers, timeout=30)


@pytest.mark.parametrize("path", ["/hub/api/users", "/hub/admin"])
def test_student_is_not_admin(hub, student, path):
    name, password = student
    session, _ = hub.login(name, password)
    r = session.get(f"{hub.url}{path}", timeout=10, allow_redirects=False)
    assert r.status_code in (302, 403)
