"""A real pdal-hub for system tests: real Linux users, PAM, proxy and servers.

The hub runs the config file pdal-hub ships, with one drop-in that overrides
only ports, paths, the admin's name and the PAM service name. Everything this
module creates (users, PAM service, directories) carries the run's unique
prefix and is removed by `cleanup()`; processes are stopped by their PID.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket

from pdal_hub.resources import data_path, read_data

VENV_BIN = Path(sys.executable).parent
PREFIX = "pdt" + secrets.token_hex(2)


def mark_system_tests(items, directory: Path, kind: str) -> None:
    """Mark the tests below `directory` as system tests; skip them with a reason unless root."""
    for item in items:
        if directory in Path(item.fspath).parents:
            item.add_marker(pytest.mark.system)
            if os.geteuid() != 0:
                item.add_marker(
                    pytest.mark.skip(reason=f"{kind} create Linux users and PAM files: run as root")
                )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def pids_of_uid(uid: int) -> list[int]:
    """PIDs of processes running as `uid` (servers our hub started for a test user)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except FileNotFoundError:
                continue
    return pids


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class _SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def bound_session(source: str) -> requests.Session:
    """A requests session whose connections come from loopback address `source`."""
    session = requests.Session()
    adapter = _SourceAddressAdapter(source)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def post_login_form(
    url: str, session: requests.Session, data: dict, timeout: float = 30
) -> requests.Response:
    """POST the login form at `url` (the hub, or a proxy in front of it) as a browser does.

    Fetches the form first when `session` has no xsrf cookie yet; never follows the redirect.
    """
    if "_xsrf" not in session.cookies:
        session.get(f"{url}/hub/login", timeout=timeout)
    return session.post(
        f"{url}/hub/login",
        data={**data, "_xsrf": session.cookies.get("_xsrf")},
        allow_redirects=False,
        timeout=timeout,
    )


class LinuxUsers:
    """Creates prefixed Linux accounts with passwords; removes them and their processes."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, suffix: str, password: str | None = None, system: bool = False) -> str:
        name = f"{PREFIX}{suffix}"
        cmd = ["useradd", "--create-home", "--shell", "/bin/bash"]
        if system:
            cmd.append("--system")
        run(cmd + [name])
        self.created.append(name)
        if password:
            run(["chpasswd"], input=f"{name}:{password}\n")
        return name

    def cleanup(self) -> None:
        for name in self.created:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            for pid in pids_of_uid(uid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["userdel", "--remove", "--force", name], capture_output=True)
        self.created.clear()


class RealHub:
    """One pdal-hub process, from the shipped config, on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        admin: str,
        extra_config: str = "",
        venv_bin: Path = VENV_BIN,
        config_source: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.venv_bin = venv_bin
        self.admin = admin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_dir = workdir / "etc"
        self.state_dir = workdir / "state"
        self.libs_root = Path(f"/opt/{PREFIX}-libs")
        self.pam_service = f"{PREFIX}-pdal-hub"
        self.log_path = workdir / "jupyterhub.log"
        self.proc: subprocess.Popen | None = None
        self._admin_token: str | None = None
        self._write_config(extra_config, config_source or data_path("config"))

    def _write_config(self, extra_config: str, config_source: Path) -> None:
        drop_ins = self.config_dir / "jupyterhub_config.d"
        drop_ins.mkdir(parents=True, exist_ok=True)
        shutil.copy(config_source, self.config_dir / "jupyterhub_config.py")
        for kind in ("python", "java", "r"):
            (self.libs_root / kind).mkdir(parents=True, exist_ok=True)
        os.chmod(self.libs_root, 0o755)
        Path("/etc/pam.d", self.pam_service).write_text(read_data("pam"))
        (drop_ins / "50-test.py").write_text(
            "# system tests: ports, paths, admin and PAM service only\n"
            + self.ports_state_and_admin()
            + f'c.PdalAuthenticator.service = "{self.pam_service}"\n'
            + f'c.SharedLibrariesMixin.libs_root = "{self.libs_root}"\n'
            + extra_config
            + "\n"
        )

    def ports_state_and_admin(self) -> str:
        """Config lines putting this hub on its own ports, state directory and admin."""
        return f"""c.JupyterHub.bind_url = "{self.url}"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.cookie_secret_file = "{self.state_dir}/jupyterhub_cookie_secret"
c.JupyterHub.db_url = "sqlite:///{self.state_dir}/jupyterhub.sqlite"
c.ConfigurableHTTPProxy.pid_file = "{self.state_dir}/jupyterhub-proxy.pid"
c.Authenticator.admin_users = {{"{self.admin}"}}
"""

    @property
    def config_file(self) -> Path:
        return self.config_dir / "jupyterhub_config.py"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, timeout: float = 60, env: dict | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, "hub already running"
        hub_env = dict(os.environ, PATH=f"{self.venv_bin}:{os.environ.get('PATH', '')}")
        hub_env.update(env or {})
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [str(self.venv_bin / "jupyterhub"), "-f", str(self.config_file)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=hub_env,
            start_new_session=True,
        )
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_for(up, timeout, what="the hub to answer")
        except TimeoutError:
            self.stop()  # a hub that answers too late must not outlive the test run
            raise TimeoutError(
                f"the hub did not answer within {timeout}s:\n{self.log()[-4000:]}"
            ) from None

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, **kwargs) -> None:
        self.stop()
        self.start(**kwargs)

    # -- as a browser would ------------------------------------------------------------

    def login(
        self, username: str, password: str, source: str | None = None
    ) -> tuple[requests.Session, requests.Response]:
        """Log in through the login form; returns the session and the POST's response.

        `source` is a loopback address (127.0.0.2, ...) to connect from, so a test
        can play clients at different addresses.
        """
        session = bound_session(source) if source else requests.Session()
        response = post_login_form(self.url, session, {"username": username, "password": password})
        return session, response

    def admin_token(self, password: str) -> str:
        """A REST API token the admin creates for themself after logging in."""
        if self._admin_token is None:
            session, response = self.login(self.admin, password)
            assert response.status_code == 302, response.text[:500]
            r = session.post(
                f"{self.url}/hub/api/users/{self.admin}/tokens",
                json={"note": "system tests", "expires_in": 7200},
                headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
                timeout=10,
            )
            r.raise_for_status()
            self._admin_token = r.json()["token"]
        return self._admin_token

    def api(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {token}"},
            timeout=kwargs.pop("timeout", 30),
            **kwargs,
        )

    def wait_server_ready(self, username: str, token: str, timeout: float = 90) -> dict:
        def ready():
            model = self.api("GET", f"/users/{username}", token).json()
            server = model.get("servers", {}).get("")
            return server if server and server.get("ready") else None

        return wait_for(ready, timeout, interval=0.5, what=f"{username}'s server")

    def stop_all_servers(self, token: str) -> None:
        for user in self.api("GET", "/users", token).json():
            if user.get("servers"):
                self.api("DELETE", f"/users/{user['name']}/server", token)
        for user in self.api("GET", "/users", token).json():
            wait_for(
                lambda u=user["name"]: not self.api("GET", f"/users/{u}", token)
                .json()
                .get("servers"),
                30,
                what=f"{user['name']}'s server to stop",
            )

    def cleanup(self, log_dir: str | Path | None = os.environ.get("PDAL_HUB_TEST_LOGS")) -> None:
        """Stop the hub, keep its log in `log_dir` (CI's artifacts), remove what it made."""
        self.stop()
        Path("/etc/pam.d", self.pam_service).unlink(missing_ok=True)
        shutil.rmtree(self.libs_root, ignore_errors=True)
        if log_dir and self.log_path.exists():
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, Path(log_dir) / f"{self.workdir.name}-hub.log")
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_code(
    hub: RealHub,
    username: str,
    token: str,
    code: str,
    kernel: str = "python3",
    timeout: float = 120,
) -> str:
    """Run `code` in a new kernel of `username`'s server; return stdout (raise on error)."""
    base = f"{hub.url}/user/{username}/api"
    headers = {"Authorization": f"token {token}"}
    # path "" starts the kernel in the server's root directory, as JupyterLab does
    r = requests.post(
        f"{base}/kernels", json={"name": kernel, "path": ""}, headers=headers, timeout=60
    )
    r.raise_for_status()
    kernel_id = r.json()["id"]
    try:
        return execute(hub, username, token, kernel_id, code, timeout)
    finally:
        requests.delete(f"{base}/kernels/{kernel_id}", headers=headers, timeout=30)


def execute(
    hub: RealHub, username: str, token: str, kernel_id: str, code: str, timeout: float = 120
) -> str:
    """Run `code` in an existing kernel over its websocket; return its stdout."""
    ws_url = hub.url.replace("http", "ws", 1) + f"/user/{username}/api/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(
        ws_url, header=[f"Authorization: token {token}"], timeout=timeout
    )
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": username,
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    out, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "execute_result":
                out.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                raise RuntimeError(f"{content['ename']}: {content['evalue']}\n" + "".join(out))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()
    raise TimeoutError(f"kernel {kernel_id} did not finish in {timeout}s; output so far: {out}")
