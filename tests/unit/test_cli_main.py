"""`pdal-hub` glue: help texts, the hub settings loader, the REST client, state files."""

from __future__ import annotations

import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from pdal_hub import install
from pdal_hub.cli import main
from pdal_hub.hubapi import CLI_TOKEN_NAME, HubAPI, HubError, cli_api_token, settings_from_config
from pdal_hub.install import (
    InstallError,
    InstallPaths,
    admin_refusal,
    create_secret_file,
    existing_backups,
    install_state,
)
from pdal_hub.resources import read_data


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], ["install", "doctor", "users", "status"]),
        (["install"], ["--dry-run", "--admin", "backed up", "Exit status"]),
        (["doctor"], ["--config", "--venv", "--kernels", "--json", "Exit status"]),
        (["users"], ["import", "add", "remove", "passwd", "list", "Exit status"]),
        (["users", "import"], ["--create-accounts", "--passwords-file", "--dry-run", "--json"]),
        (["users", "remove"], ["--delete-account", "--archive", "--keep-files", "never"]),
        (["users", "passwd"], ["--stdin", "never from the command line"]),
        (["status"], ["--json", "--active-minutes", "memory"]),
    ],
)
def test_help_explains_each_command(argv, words, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in words:
        assert word in text


def test_users_remove_refuses_to_delete_without_archive_or_keep(capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert main(["users", "remove", "ann", "--delete-account"]) == 2
    assert "Nothing changed" in capsys.readouterr().err


def test_commands_that_need_root_say_so(capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (["doctor"], ["status"], ["users", "list"], ["users", "passwd", "ann"]):
        assert main(argv) == 2
        assert "root" in capsys.readouterr().err


def test_settings_from_the_shipped_config(tmp_path):
    etc = tmp_path / "etc"
    (etc / "jupyterhub_config.d").mkdir(parents=True)
    (etc / "jupyterhub_config.py").write_text(read_data("config"))
    state = tmp_path / "state"
    (etc / "jupyterhub_config.d" / "50-test.py").write_text(
        f'c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"\n'
        f'c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"\n'
        f'c.ConfigurableHTTPProxy.pid_file = "{state}/jupyterhub-proxy.pid"\n'
        'c.JupyterHub.bind_url = "http://:9000/lab-hub/"\n'
        "c.JupyterHub.hub_port = 9081\n"
        'c.SharedLibrariesMixin.libs_root = "/srv/libs"\n'
        "c.AccountPolicy.min_uid = 2000\n"
    )
    settings = settings_from_config(str(etc / "jupyterhub_config.py"))
    assert settings["public_url"] == "http://127.0.0.1:9000/lab-hub"
    assert settings["hub_api_url"] == "http://127.0.0.1:9081/lab-hub/hub/api"
    assert (settings["bind_port"], settings["hub_port"], settings["proxy_api_port"]) == (
        9000,
        9081,
        8001,
    )
    assert settings["cookie_secret_file"] == f"{state}/jupyterhub_cookie_secret"
    assert settings["pam_service"] == "pdal-hub"
    assert settings["libs_root"] == "/srv/libs"
    assert settings["min_uid"] == 2000
    assert settings["reserved_users"] == ["root"]
    token = state / CLI_TOKEN_NAME
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) == 64


class FakeHubHandler(BaseHTTPRequestHandler):
    pages = {
        "/hub/api/users?offset=0&limit=200": {
            "items": [{"name": "a"}],
            "_pagination": {"next": {"offset": 1}},
        },
        "/hub/api/users?offset=1&limit=200": {"items": [{"name": "b"}], "_pagination": {}},
    }

    def do_GET(self):
        if self.headers.get("Authorization") != "token secret":
            return self.answer(403, {"message": ""})
        if self.path in self.pages:
            return self.answer(200, self.pages[self.path])
        return self.answer(404, {"message": "Not Found"})

    def do_POST(self):
        self.answer(400, {"message": "There is no Linux account named 'x'"})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub():
    server = HTTPServer(("127.0.0.1", 0), FakeHubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api"
    server.shutdown()
    server.server_close()


def test_hub_api_follows_pages_and_explains_errors(fake_hub):
    api = HubAPI(fake_hub, "secret")
    assert [u["name"] for u in api.users()] == ["a", "b"]
    assert api.user("nobody-here") is None
    with pytest.raises(HubError, match="HTTP 400 There is no Linux account named 'x'"):
        api.add_user("x")
    with pytest.raises(HubError, match="restart the hub"):
        HubAPI(fake_hub, "wrong").users()


def test_hub_api_says_when_the_hub_is_down():
    api = HubAPI("http://127.0.0.1:9/hub/api", "secret", timeout=2)
    assert not api.is_up()
    with pytest.raises(HubError, match="does not answer .* Check with `pdal-hub doctor`"):
        api.users()


def test_install_state_dry_run_changes_nothing(tmp_path):
    paths = InstallPaths(state_dir=tmp_path / "state")
    actions = install_state(paths, dry_run=True)
    assert f"created {tmp_path}/state (mode 0o700)" in actions
    assert f"created {tmp_path}/state/pdal-hub-cli.token (0600)" in actions
    assert not (tmp_path / "state").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="state files are made root-owned")
def test_secret_files_are_created_once_and_made_private(tmp_path):
    secret = tmp_path / "secret"
    assert create_secret_file(secret, "abc\n", dry_run=False) == [f"created {secret} (0600)"]
    assert create_secret_file(secret, "other\n", dry_run=False) == []
    assert secret.read_text() == "abc\n"
    secret.chmod(0o644)
    assert create_secret_file(secret, "other\n", dry_run=False) == [
        f"made {secret} root-only (0600)"
    ]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_existing_backups_are_listed(tmp_path):
    paths = InstallPaths(
        config_dir=tmp_path / "etc", unit_dir=tmp_path / "unit", pam_dir=tmp_path / "pam"
    )
    (tmp_path / "etc" / "jupyterhub_config.d").mkdir(parents=True)
    backup = tmp_path / "etc" / "jupyterhub_config.py.bak-20260101-120000"
    backup.write_text("x")
    drop_in_backup = tmp_path / "etc" / "jupyterhub_config.d" / "00-admin.py.bak-20260101-120000"
    drop_in_backup.write_text("y")
    Path(tmp_path / "etc" / "other.bak-1").write_text("z")
    assert existing_backups(paths) == [backup, drop_in_backup]


@pytest.mark.parametrize(
    "admin, account, create, reason",
    [
        ("pdal", SimpleNamespace(pw_uid=1000), False, None),
        ("pdal", None, True, None),
        ("pdal", None, False, "--create-admin"),
        ("root", SimpleNamespace(pw_uid=0), True, "reserved account"),
        ("www-data", SimpleNamespace(pw_uid=33), False, "system account"),
    ],
)
def test_admin_refusal(admin, account, create, reason):
    refusal = admin_refusal(admin, account, create)
    if reason is None:
        assert refusal is None
    else:
        assert reason in refusal


def test_install_refuses_a_bad_admin_before_changing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    paths = [
        "--config-dir",
        str(tmp_path / "etc"),
        "--state-dir",
        str(tmp_path / "state"),
        "--libs-root",
        str(tmp_path / "libs"),
        "--unit-dir",
        str(tmp_path / "unit"),
        "--pam-dir",
        str(tmp_path / "pam"),
    ]
    assert main(["install", "--admin", "root", *paths]) == 1
    assert "Nothing was changed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "active, changed, fails, calls, message",
    [
        (True, False, False, [], "jupyterhub.service is running"),
        (True, True, False, ["restart"], "restarted jupyterhub.service"),
        (False, False, False, ["start"], "started jupyterhub.service"),
        (False, True, True, ["start"], "journalctl -u jupyterhub"),
    ],
)
def test_start_or_restart_unit(active, changed, fails, calls, message, monkeypatch):
    seen = []

    def fake_run(cmd, **kwargs):
        if cmd[1] == "is-active":
            return SimpleNamespace(returncode=0 if active else 3, stderr="")
        seen.append(cmd[1])
        return SimpleNamespace(returncode=1 if fails else 0, stderr="unit failed")

    monkeypatch.setattr(install, "run", fake_run)
    if fails:
        with pytest.raises(InstallError, match=message):
            install.start_or_restart_unit(changed)
    else:
        assert install.start_or_restart_unit(changed) == message
    assert seen == calls


def test_cli_api_token_is_made_once_root_only(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = SimpleNamespace(
        JupyterHub=SimpleNamespace(cookie_secret_file=str(state / "jupyterhub_cookie_secret"))
    )
    token = cli_api_token(config)
    assert cli_api_token(config) == token and len(token) == 64
    assert [p.name for p in state.iterdir()] == [CLI_TOKEN_NAME]
    assert stat.S_IMODE((state / CLI_TOKEN_NAME).stat().st_mode) == 0o600
