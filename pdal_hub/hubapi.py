"""How the `pdal-hub` command finds and talks to the hub.

The hub's config file is the single source of truth: `load_settings` reads it in
a separate interpreter (the hub's own venv) and returns the few values the
command needs — URLs, ports, state files, the PAM service. `HubAPI` is a small
REST client that authenticates with the CLI service's token, a root-only file in
the hub's state directory that the shipped config creates and registers.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import system

CLI_SERVICE = "pdal-hub-cli"
CLI_TOKEN_NAME = "pdal-hub-cli.token"

#: What `pdal-hub users` and `pdal-hub status` need from the hub, and nothing more.
CLI_SCOPES = [
    "list:users",
    "read:users",
    "read:users:activity",
    "read:servers",
    "admin:users",
    "list:groups",
    "read:groups",
    "admin:groups",
    "groups",
]


class HubError(Exception):
    """The hub cannot be reached or refused a request; the message says what to do."""


def state_dir_of(cookie_secret_file: str) -> str:
    """The hub's state directory: where its cookie secret lives."""
    return os.path.dirname(cookie_secret_file)


def cli_api_token(config: Any) -> str:
    """The CLI service's API token, created root-only (0600) on first use.

    Called from jupyterhub_config.py with the hub's config object, after
    `ensure_state_dir` made the state directory private. The file appears
    complete or not at all (written aside, then linked), so a hub and a
    `pdal-hub` command loading the config at once agree on one token.
    """
    path = os.path.join(state_dir_of(config.JupyterHub.cookie_secret_file), CLI_TOKEN_NAME)
    if not os.path.lexists(path):
        fd, staged = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".token-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(staged)
    return read_token(Path(path))


def read_token(path: Path) -> str:
    """The token in `path`, refusing a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as f:
        return f.read().strip()


def cli_role() -> dict:
    """The role of the CLI service, for ``c.JupyterHub.load_roles``."""
    return {
        "name": CLI_SERVICE,
        "description": "The pdal-hub admin command: manage users and groups, read status",
        "scopes": list(CLI_SCOPES),
        "services": [CLI_SERVICE],
    }


@dataclass
class HubSettings:
    """What the `pdal-hub` command needs to know about one hub, read from its config."""

    config_file: str
    public_url: str
    hub_api_url: str
    bind_port: int
    hub_port: int
    proxy_api_port: int
    proxy_command: list[str]
    cookie_secret_file: str
    pid_file: str
    pam_service: str
    libs_root: str
    min_uid: int = 1000
    reserved_users: list[str] = field(default_factory=lambda: ["root"])

    @property
    def state_dir(self) -> str:
        return state_dir_of(self.cookie_secret_file)

    @property
    def token_file(self) -> str:
        return os.path.join(self.state_dir, CLI_TOKEN_NAME)


def _local_url(url: str) -> str:
    """Scheme and address of `url`, an all-interfaces or empty host replaced by 127.0.0.1."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if (parts.hostname or "") in ("", "0.0.0.0", "::"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
    return f"{parts.scheme}://{netloc}"


def _port(url: str, default: int) -> int:
    return urllib.parse.urlsplit(url).port or default


def settings_from_config(config_file: str) -> dict:
    """Load `config_file` as JupyterHub would and pick out the settings (runs in the hub venv)."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.proxy import ConfigurableHTTPProxy
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(config_file)
    c = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    app = JupyterHub(config=c)
    authenticator = app.authenticator_class(config=c)
    spawner = app.spawner_class(config=c)
    proxy = ConfigurableHTTPProxy(config=c, app=app)
    base_url = app.base_url.rstrip("/") + "/"
    hub_root = _local_url(app.hub_bind_url or f"http://{app.hub_ip}:{app.hub_port}")
    settings = HubSettings(
        config_file=str(path.resolve()),
        public_url=_local_url(app.bind_url) + base_url.rstrip("/"),
        hub_api_url=f"{hub_root}{base_url}hub/api",
        bind_port=_port(app.bind_url, 8000),
        hub_port=_port(app.hub_bind_url, app.hub_port) if app.hub_bind_url else app.hub_port,
        proxy_api_port=_port(proxy.api_url, 8001),
        proxy_command=list(proxy.command),
        cookie_secret_file=os.path.abspath(app.cookie_secret_file),
        pid_file=os.path.abspath(proxy.pid_file),
        pam_service=getattr(authenticator, "service", "login"),
        libs_root=getattr(spawner, "libs_root", "/opt/jupyterhub-libs"),
        min_uid=getattr(authenticator, "min_uid", 1000),
        reserved_users=sorted(getattr(authenticator, "reserved_users", {"root"})),
    )
    return asdict(settings)


def load_settings(config_file: Path, python: str = sys.executable) -> HubSettings:
    """Read the hub's settings from `config_file` with `python` (the hub venv's).

    Raises HubError with the loader's own error when the config does not load.
    """
    if not config_file.is_file():
        raise HubError(
            f"There is no hub config at {config_file}. Run `pdal-hub install`, or point "
            "to the config with --config."
        )
    code = (
        "import json, sys\n"
        "from pdal_hub.hubapi import settings_from_config\n"
        "print(json.dumps(settings_from_config(sys.argv[1])))\n"
    )
    result = run([python, "-c", code, str(config_file)], cwd="/")
    if result.returncode:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise HubError(
            f"The hub config {config_file} does not load:\n  "
            + "\n  ".join(lines[-6:] or ["(no error output)"])
        )
    return HubSettings(**json.loads(result.stdout.strip().splitlines()[-1]))


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`system.run` with a two-minute limit, so the admin command never hangs on a tool."""
    return system.run(cmd, timeout=120, **kwargs)


class HubAPI:
    """The hub's REST API with the CLI service's token."""

    def __init__(self, api_url: str, token: str, timeout: float = 30) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: HubSettings) -> HubAPI:
        try:
            token = read_token(Path(settings.token_file))
        except FileNotFoundError:
            raise HubError(
                f"The CLI service token {settings.token_file} is missing. It is created "
                "when the hub loads its config: (re)start the hub (systemctl restart "
                "jupyterhub), or run `pdal-hub install`."
            ) from None
        except PermissionError:
            raise HubError(
                f"Cannot read {settings.token_file}: run this command as root (sudo)."
            ) from None
        return cls(settings.hub_api_url, token)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; returns the decoded JSON answer (None when empty)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise HubError(self._http_error_message(method, path, e)) from None
        except (urllib.error.URLError, OSError) as e:
            raise HubError(
                f"The hub does not answer at {self.api_url} ({getattr(e, 'reason', e)}). "
                "Is it running? Check with `pdal-hub doctor`."
            ) from None
        return json.loads(raw) if raw.strip() else None

    def _http_error_message(self, method: str, path: str, e: urllib.error.HTTPError) -> str:
        try:
            message = json.loads(e.read()).get("message", "")
        except (ValueError, AttributeError):
            message = ""
        if e.code == 403 and not message:
            message = (
                "the hub refused the CLI service's token: restart the hub so it loads "
                "the current config and token (systemctl restart jupyterhub)"
            )
        return f"{method} {path}: HTTP {e.code} {message or e.reason}"

    def is_up(self) -> bool:
        """True when the hub's API answers (no token needed)."""
        try:
            with urllib.request.urlopen(self.api_url + "/", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def users(self) -> list[dict]:
        """Every user the hub knows, following pagination."""
        users, offset = [], 0
        while True:
            page = self.request("GET", f"/users?offset={offset}&limit=200")
            if isinstance(page, dict):
                items, next_page = page.get("items", []), page.get("_pagination", {}).get("next")
            else:
                items, next_page = page, None
            users += items
            if not next_page:
                return users
            offset = next_page["offset"]

    def user(self, name: str) -> dict | None:
        try:
            return self.request("GET", f"/users/{urllib.parse.quote(name)}")
        except HubError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def add_user(self, name: str) -> None:
        self.request("POST", f"/users/{urllib.parse.quote(name)}", {})

    def delete_user(self, name: str) -> None:
        self.request("DELETE", f"/users/{urllib.parse.quote(name)}")

    def group(self, name: str) -> dict | None:
        try:
            return self.request("GET", f"/groups/{urllib.parse.quote(name)}")
        except HubError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def add_group(self, name: str) -> None:
        self.request("POST", f"/groups/{urllib.parse.quote(name)}", {})

    def add_group_members(self, name: str, users: list[str]) -> None:
        self.request("POST", f"/groups/{urllib.parse.quote(name)}/users", {"users": users})
