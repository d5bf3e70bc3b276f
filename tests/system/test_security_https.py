"""HTTPS (hub's own TLS, and docs/security.md's nginx recipe), roles and service scopes."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from hubharness import (
    PREFIX,
    RealHub,
    bound_session,
    free_port,
    post_login_form,
    run,
    run_code,
    wait_for,
)

SECURITY_DOC = (Path(__file__).parents[2] / "docs" / "security.md").read_text()


def doc_block(name: str) -> str:
    """The fenced block marked `<!-- tested: name -->` in docs/security.md."""
    match = re.search(rf"<!-- tested: {name} -->\s*```\w*\n(.*?)```", SECURITY_DOC, re.S)
    assert match, f"docs/security.md has no block marked tested: {name}"
    return match.group(1)


@pytest.fixture(scope="module")
def certificate():
    """A self-signed certificate for 127.0.0.1, trusted by requests and websocket-client."""
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-tls-"))
    cert, key = directory / "hub.pem", directory / "hub.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)])  # fmt: skip
    os.chmod(key, 0o600)
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "WEBSOCKET_CLIENT_CA_BUNDLE")}
    os.environ.update(REQUESTS_CA_BUNDLE=str(cert), WEBSOCKET_CLIENT_CA_BUNDLE=str(cert))
    yield cert, key
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(directory, ignore_errors=True)


def token_for(url: str, name: str, password: str, source: str = "127.0.0.1") -> str:
    """Log `name` in at `url` (hub or nginx) and create an API token for them."""
    session = bound_session(source)
    r = post_login_form(url, session, {"username": name, "password": password})
    assert r.status_code == 302, r.text[:300]
    r = session.post(
        f"{url}/hub/api/users/{name}/tokens",
        json={"note": "security tests", "expires_in": 3600},
        headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["token"]


def new_hub(admin: str, extra_config: str) -> RealHub:
    return RealHub(Path(tempfile.mkdtemp(prefix="pdal-hub-https-")), admin, extra_config)


def login_cookies_are_secure(response: requests.Response) -> bool:
    cookies = response.raw.headers.getlist("Set-Cookie")
    login = [c for c in cookies if c.startswith(("jupyterhub-hub-login", "jupyterhub-session-id"))]
    return bool(login) and all("secure" in c.lower() for c in login)


def test_hub_serves_tls_from_the_admins_certificate(admin, certificate):
    cert, key = certificate
    port = free_port()
    hub = new_hub(
        admin[0],
        f'c.JupyterHub.bind_url = "https://127.0.0.1:{port}"\n'
        f'c.JupyterHub.ssl_cert = "{cert}"\nc.JupyterHub.ssl_key = "{key}"\n',
    )
    hub.url = f"https://127.0.0.1:{port}"
    try:
        hub.start()
        assert requests.get(f"{hub.url}/hub/api/", timeout=10).status_code == 200
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=10)
        _, response = hub.login(admin[0], admin[1])
        assert response.status_code == 302
        assert login_cookies_are_secure(response)
    finally:
        hub.cleanup()


@pytest.fixture(scope="module")
def nginx_hub(admin, certificate):
    if not shutil.which("nginx"):
        pytest.skip("nginx is not installed (tests/run.sh installs it)")
    cert, key = certificate
    hub_port, nginx_port = free_port(), free_port()
    drop_in = doc_block("nginx-drop-in").replace("127.0.0.1:8000", f"127.0.0.1:{hub_port}")
    hub = new_hub(admin[0], drop_in)
    hub.url = f"http://127.0.0.1:{hub_port}"
    site = (
        doc_block("nginx-site")
        .replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{nginx_port} ssl;")
        .replace("hub.example.edu", "127.0.0.1")
        .replace("/etc/ssl/certs/127.0.0.1.pem", str(cert))
        .replace("/etc/ssl/private/127.0.0.1.key", str(key))
        .replace("127.0.0.1:8000", f"127.0.0.1:{hub_port}")
    )
    nginx_dir = hub.workdir / "nginx"
    nginx_dir.mkdir()
    (nginx_dir / "nginx.conf").write_text(f"""daemon off;
pid {nginx_dir}/nginx.pid;
error_log {nginx_dir}/error.log;
events {{}}
http {{
    access_log {nginx_dir}/access.log;
    client_body_temp_path {nginx_dir}/body;
    proxy_temp_path {nginx_dir}/proxy;
{site}
}}
""")
    nginx = None
    try:
        hub.start()
        nginx = subprocess.Popen(
            ["nginx", "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        url = f"https://127.0.0.1:{nginx_port}"

        def up():
            if nginx.poll() is not None:
                raise RuntimeError(f"nginx exited: {nginx.stderr.read().decode()}")
            try:
                return requests.get(f"{url}/hub/api/", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, 30, what="nginx to answer")
        yield hub, url
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(5)
        hub.cleanup()


def test_nginx_recipe_serves_lab_and_kernels_over_https(nginx_hub, admin, linux_users):
    hub, url = nginx_hub
    password = secrets.token_urlsafe(12)
    name = linux_users.create("tls", password)
    proxied = SimpleNamespace(url=url)
    token = token_for(url, admin[0], admin[1])
    r = requests.post(
        f"{url}/hub/api/users", json={"usernames": [name]},
        headers={"Authorization": f"token {token}"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 201, r.text

    session = bound_session("127.0.0.77")
    wrong = post_login_form(url, session, {"username": name, "password": "wrong"})
    assert wrong.status_code == 403
    assert f"Failed login from 127.0.0.77 for {name!r}: wrong password" in hub.log()
    right = post_login_form(url, session, {"username": name, "password": password})
    assert right.status_code == 302
    assert login_cookies_are_secure(right)

    session.get(f"{url}/hub/spawn", timeout=60)
    hub.wait_server_ready(name, token)
    lab = session.get(f"{url}/user/{name}/lab", timeout=60)
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    assert run_code(proxied, name, token, "x = 6 * 7; print(x)").strip() == "42"
    requests.delete(
        f"{url}/hub/api/users/{name}/server", headers={"Authorization": f"token {token}"},
        timeout=30,
    )  # fmt: skip


def test_instructor_opens_a_students_server_without_being_admin(
    hub, student, linux_users, admin_token
):
    owner, _ = student
    ta_password = secrets.token_urlsafe(12)
    ta = linux_users.create("ta", ta_password)
    assert hub.api("POST", "/users", admin_token, json={"usernames": [ta]}).status_code == 201
    r = hub.api("POST", "/groups/instructors/users", admin_token, json={"users": [ta]})
    assert r.status_code == 200, r.text
    assert hub.api("POST", f"/users/{owner}/server", admin_token).status_code in (201, 202)
    hub.wait_server_ready(owner, admin_token)

    ta_token = token_for(hub.url, ta, ta_password)
    assert run_code(hub, owner, ta_token, "print('helped')").strip() == "helped"
    assert hub.api("GET", "/users", ta_token).status_code == 200
    # but not an admin: cannot add users, change groups or act as a student
    assert hub.api("POST", "/users", ta_token, json={"usernames": ["x"]}).status_code == 403
    r = hub.api("POST", "/groups/instructors/users", ta_token, json={"users": [owner]})
    assert r.status_code == 403
    assert hub.api("POST", f"/users/{owner}/tokens", ta_token, json={}).status_code == 403
    hub.api("DELETE", f"/users/{owner}/server", admin_token)


def test_services_have_no_admin_role_or_server_access(hub, admin_token):
    services = hub.api("GET", "/services", admin_token).json()
    assert "idle-culler" in services
    for name, service in services.items():
        assert "admin" not in service["roles"] and not service.get("admin"), name
    assert services["idle-culler"]["roles"] == ["idle-culler"]
