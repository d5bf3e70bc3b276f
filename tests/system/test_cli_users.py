"""`pdal-hub users` and `pdal-hub status`, run as a subprocess as root, against the real hub.

The session hub runs the shipped config, so the CLI reaches it exactly as on an
installed machine: the hub's address and the CLI service's token come from the
config file named with --config.
"""

from __future__ import annotations

import csv
import json
import pwd
import re
import secrets
import stat
import subprocess
import tarfile
from pathlib import Path

from hubharness import PREFIX, VENV_BIN, pids_of_uid, wait_for

from pdal_hub.hubapi import CLI_SCOPES, CLI_TOKEN_NAME

CLI = str(VENV_BIN / "pdal-hub")


def cli(hub, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args, "--config", str(hub.config_file)],
        capture_output=True,
        text=True,
        input=stdin,
        cwd="/",
        timeout=300,
    )


def account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_cli_service_token_is_root_only_and_has_only_its_scopes(hub):
    token_file = hub.state_dir / CLI_TOKEN_NAME
    st = token_file.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    token = token_file.read_text().strip()
    model = hub.api("GET", "/user", token).json()
    assert model["kind"] == "service" and model["name"] == "pdal-hub-cli"
    assert "admin:users" in model["scopes"]
    assert not {"access:servers", "admin:server_state", "tokens", "shutdown"} & set(model["scopes"])
    assert set(CLI_SCOPES) <= set(model["scopes"])


def test_roster_import_adds_good_rows_reports_bad_ones_and_is_idempotent(
    hub, linux_users, tmp_path
):
    existing_password = secrets.token_urlsafe(12)
    existing = linux_users.create("rx", existing_password)
    system = linux_users.create("rsys", secrets.token_urlsafe(12), system=True)
    new_with_password, new_generated, new_in_group = (f"{PREFIX}r{i}" for i in (1, 2, 3))
    group = f"{PREFIX}-cs101"
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Username,Full Name,Initial Password,Course\n"
        f"{new_with_password},Ada Lovelace,Analytical-Engine-1,\n"
        f'{new_generated},"Hopper, Grace",,\n'
        f"{new_in_group},Alan Turing,,{group}\n"
        f"{existing},Existing Student,,{group}\n"
        f"{new_generated},Second Line,,\n"
        "root,Root,,\n"
        f"{system},A Service,,\n"
        "Not-Valid Name,,,\n"
        f"{PREFIX}toomany,a,b,c,d,e\n"
        f"{PREFIX}badgroup,,,no spaces allowed\n"
    )
    linux_users.created += [new_with_password, new_generated, new_in_group]
    passwords = tmp_path / "passwords.csv"

    first = cli(
        hub,
        "users",
        "import",
        str(roster),
        "--create-accounts",
        "--passwords-file",
        str(passwords),
        "--json",
    )
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)
    by_line = {row["line"]: row for row in report["rows"]}
    assert [by_line[n]["status"] for n in range(2, 12)] == [
        "changed",
        "changed",
        "changed",
        "changed",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
    ]
    assert "duplicate of line 3" in by_line[6]["reason"]
    assert "reserved account" in by_line[7]["reason"]
    assert "system account" in by_line[8]["reason"]
    assert "invalid username" in by_line[9]["reason"]
    assert "malformed row" in by_line[10]["reason"]
    assert "invalid group" in by_line[11]["reason"]
    assert by_line[5]["actions"] == ["added to the hub", f"added to group {group}"]
    assert report["summary"] == {"changed": 4, "unchanged": 0, "skipped": 6, "failed": 0}

    st = passwords.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    initial = dict(list(csv.reader(passwords.open()))[1:])
    assert set(initial) == {new_with_password, new_generated, new_in_group}
    assert initial[new_with_password] == "Analytical-Engine-1"
    assert pwd.getpwnam(new_generated).pw_gecos.startswith("Hopper, Grace")

    for name, password in [*initial.items(), (existing, existing_password)]:
        _, response = hub.login(name, password)
        assert response.status_code == 302, f"{name} cannot log in"
    assert not account_exists(f"{PREFIX}badgroup") and not account_exists(f"{PREFIX}toomany")
    token = (hub.state_dir / CLI_TOKEN_NAME).read_text().strip()
    members = hub.api("GET", f"/groups/{group}", token).json()["users"]
    assert sorted(members) == sorted([new_in_group, existing])

    users_before = hub.api("GET", "/users", token).json()
    again_passwords = tmp_path / "again.csv"
    second = cli(
        hub,
        "users",
        "import",
        str(roster),
        "--create-accounts",
        "--passwords-file",
        str(again_passwords),
        "--json",
    )
    report = json.loads(second.stdout)
    assert report["summary"] == {"changed": 0, "unchanged": 4, "skipped": 6, "failed": 0}
    assert not again_passwords.exists()
    assert hub.api("GET", "/users", token).json() == users_before
    _, response = hub.login(new_with_password, "Analytical-Engine-1")
    assert response.status_code == 302

    text = cli(hub, "users", "import", str(roster))
    assert "0 changed, 4 unchanged, 6 skipped, 0 failed" in text.stdout
    assert re.search(r"line 7 +root +SKIPPED: 'root' is a reserved account", text.stdout)


def test_removed_students_cannot_log_in_and_their_files_are_archived(hub, linux_users, tmp_path):
    kept_password, archived_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    kept = linux_users.create("keep", kept_password)
    archived = linux_users.create("arch", archived_password)
    for name in (kept, archived):
        added = cli(hub, "users", "add", name)
        assert added.returncode == 0, added.stdout + added.stderr
        assert "added to the hub" in added.stdout
    home = Path(pwd.getpwnam(archived).pw_dir)
    (home / "notes.txt").write_text("my homework\n")

    refused = cli(hub, "users", "remove", archived, "--delete-account")
    assert refused.returncode == 2
    assert "--archive" in refused.stderr and "Nothing changed" in refused.stderr
    assert account_exists(archived)

    removed = cli(hub, "users", "remove", kept)
    assert removed.returncode == 0, removed.stderr
    assert "Linux account and files" in removed.stdout and "kept" in removed.stdout
    assert account_exists(kept)
    _, response = hub.login(kept, kept_password)
    assert response.status_code == 403

    archive_dir = tmp_path / "archive"
    gone = cli(
        hub,
        "users",
        "remove",
        archived,
        "--delete-account",
        "--archive",
        "--archive-dir",
        str(archive_dir),
    )
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not account_exists(archived)
    assert not home.exists()
    (archive,) = archive_dir.glob(f"{archived}-*.tar.gz")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive_dir.stat().st_mode) == 0o700
    with tarfile.open(archive) as tar:
        notes = tar.extractfile(f"{home.name}/notes.txt")
        assert notes.read() == b"my homework\n"
    _, response = hub.login(archived, archived_password)
    assert response.status_code == 403


def test_passwd_resets_a_password_generated_or_from_stdin(hub, student):
    name, old_password = student
    reset = cli(hub, "users", "passwd", name)
    assert reset.returncode == 0, reset.stderr
    new_password = re.search(r"New password of \S+: (\S+)", reset.stdout).group(1)
    assert hub.login(name, old_password)[1].status_code == 403
    assert hub.login(name, new_password)[1].status_code == 302

    chosen = secrets.token_urlsafe(12)
    given = cli(hub, "users", "passwd", name, "--stdin", stdin=chosen + "\n")
    assert given.returncode == 0, given.stderr
    assert chosen not in given.stdout
    assert hub.login(name, chosen)[1].status_code == 302

    root = cli(hub, "users", "passwd", "root")
    assert root.returncode == 2 and "reserved account" in root.stderr


def test_status_shows_running_servers_and_remove_stops_them(hub, student, admin_token):
    name, password = student
    session, response = hub.login(name, password)
    assert response.status_code == 302
    r = hub.api("POST", f"/users/{name}/server", admin_token)
    assert r.status_code in (201, 202), r.text
    hub.wait_server_ready(name, admin_token)
    uid = pwd.getpwnam(name).pw_uid
    try:
        result = cli(hub, "status", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        status = json.loads(result.stdout)
        assert status["hub"]["up"] and status["proxy"]["up"]
        assert name in status["active"]
        (server,) = [s for s in status["servers"] if s["user"] == name]
        assert server["state"] == "ready"
        assert server["processes"] >= 1
        assert server["rss_bytes"] > 20 * 2**20
        text = cli(hub, "status")
        assert re.search(rf"{name} +ready +\d+ MiB", text.stdout), text.stdout

        listing = json.loads(cli(hub, "users", "list", "--json").stdout)
        (row,) = [u for u in listing if u["name"] == name]
        assert row["server"] == "running" and row["linux_account"]

        removed = cli(hub, "users", "remove", name)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "removed from the hub and stopped their server" in removed.stdout
        wait_for(lambda: not pids_of_uid(uid), 30, what="the server's processes to end")
        assert hub.api("GET", f"/users/{name}", admin_token).status_code == 404
        assert hub.login(name, password)[1].status_code == 403
    finally:
        if hub.api("GET", f"/users/{name}", admin_token).status_code == 200:
            hub.api("DELETE", f"/users/{name}", admin_token)


def test_users_commands_need_a_reachable_hub(tmp_path):
    config = tmp_path / "jupyterhub_config.py"
    result = subprocess.run(
        [CLI, "users", "list", "--config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 3
    assert f"There is no hub config at {config}" in result.stderr
