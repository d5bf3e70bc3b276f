"""Pre-lecture start: which members get a server, the systemd units, the command."""

from __future__ import annotations

import pytest

from pdal_hub import prestart
from pdal_hub.cli import main
from pdal_hub.hubapi import HubError


@pytest.mark.parametrize(
    "user, expected",
    [
        (None, "missing"),
        ({"name": "a", "servers": {}}, "stopped"),
        ({"name": "a"}, "stopped"),
        ({"name": "a", "servers": {"": {"ready": True}}}, "running"),
        ({"name": "a", "servers": {"": {"ready": False, "pending": "spawn"}}}, "running"),
        ({"name": "a", "servers": {"extra": {"ready": True}}}, "stopped"),
    ],
)
def test_server_state(user, expected):
    assert prestart.server_state(user) == expected


@pytest.mark.parametrize(
    "group, ok",
    [
        ("ds101", True),
        ("Intro_Java-2.b", True),
        ("", False),
        ("-x", False),
        ("a b", False),
        ("a/b", False),
        ("x" * 65, False),
        ("kurs\n", False),
    ],
)
def test_check_group_name(group, ok):
    if ok:
        assert prestart.check_group_name(group) == group
    else:
        with pytest.raises(ValueError, match="letters, digits"):
            prestart.check_group_name(group)


class FakeAPI:
    """The HubAPI calls start_group makes, on an in-memory hub."""

    def __init__(self, groups: dict, users: dict, refuse: set[str] = frozenset()):
        self.groups, self.users, self.refuse, self.posts = groups, users, refuse, []

    def group(self, name):
        return self.groups.get(name)

    def user(self, name):
        return self.users.get(name)

    def request(self, method, path, body=None):
        name = path.split("/")[2]
        if name in self.refuse:
            raise HubError(f"{method} {path}: HTTP 400 nope")
        self.posts.append((method, path))


def test_start_group_starts_only_stopped_members():
    api = FakeAPI(
        {"ds101": {"users": ["cat", "ann", "bob", "dan", "eve"]}},
        {
            "ann": {"servers": {}},
            "bob": {"servers": {"": {"ready": True}}},
            "cat": {"servers": {}},
            "eve": {"servers": {}},
        },
        refuse={"eve"},
    )
    report = prestart.start_group(api, "ds101")
    assert report.started == ["ann", "cat"]
    assert report.already_running == ["bob"]
    assert report.failed == {
        "dan": "not a hub user",
        "eve": "POST /users/eve/server: HTTP 400 nope",
    }
    assert api.posts == [("POST", "/users/ann/server"), ("POST", "/users/cat/server")]


def test_start_group_of_a_missing_group_says_what_to_do():
    with pytest.raises(HubError, match="no group 'nope'.*pdal-hub users import"):
        prestart.start_group(FakeAPI({}, {}), "nope")


def test_prestart_role_grants_starting_servers_to_the_cli_service():
    role = prestart.prestart_role()
    assert role["services"] == ["pdal-hub-cli"]
    assert "servers" in role["scopes"] and "read:groups" in role["scopes"]


def test_render_units():
    service, timer = prestart.render_units(
        "ds101", " Mon,Wed 08:05 ", ["/v/bin/pdal-hub", "servers", "start", "--group", "ds101"]
    )
    assert "ExecStart=/v/bin/pdal-hub servers start --group ds101\n" in service
    assert "Type=oneshot" in service and "Requisite=jupyterhub.service" in service
    assert "OnCalendar=Mon,Wed 08:05\n" in timer
    assert "Unit=pdal-hub-prestart-ds101.service" in timer


@pytest.mark.parametrize("spec", ["", "  ", "Mon 08:00\nExecStart=/bin/evil"])
def test_render_units_refuses_bad_calendar(spec):
    with pytest.raises(ValueError, match="calendar"):
        prestart.render_units("ds101", spec, ["pdal-hub"])


def test_schedule_writes_both_units(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prestart.os, "geteuid", lambda: 0)
    code = main(
        [
            "servers",
            "schedule",
            "--group",
            "ds101",
            "--on-calendar",
            "Tue 09:50",
            "--unit-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pdal-hub-prestart-ds101.service",
        "pdal-hub-prestart-ds101.timer",
    ]
    assert "systemctl enable --now pdal-hub-prestart-ds101.timer" in capsys.readouterr().out


def test_schedule_dry_run_writes_nothing(tmp_path, capsys):
    assert (
        main(
            [
                "servers",
                "schedule",
                "--group",
                "ds101",
                "--on-calendar",
                "Tue 09:50",
                "--unit-dir",
                str(tmp_path),
                "--dry-run",
            ]
        )
        == 0
    )
    assert not list(tmp_path.iterdir())
    assert "OnCalendar=Tue 09:50" in capsys.readouterr().out


def test_schedule_bad_group_is_usage_error(tmp_path, capsys):
    assert (
        main(
            [
                "servers",
                "schedule",
                "--group",
                "a b",
                "--on-calendar",
                "Tue 09:50",
                "--unit-dir",
                str(tmp_path),
                "--dry-run",
            ]
        )
        == 2
    )
    assert "letters, digits" in capsys.readouterr().err


@pytest.mark.parametrize(
    "api, code, out, err",
    [
        (FakeAPI({"c": {"users": ["ann"]}}, {"ann": {"servers": {}}}), 0, "started: 1 (ann)", ""),
        (FakeAPI({"c": {"users": ["ann"]}}, {}), 1, "started: 0", "failed: ann: not a hub user"),
        (FakeAPI({}, {}), 3, "", "error: The hub has no group 'c'"),
    ],
)
def test_start_command(monkeypatch, capsys, api, code, out, err):
    monkeypatch.setattr(prestart, "load_settings", lambda path: object())
    monkeypatch.setattr(prestart.HubAPI, "from_settings", classmethod(lambda cls, s: api))
    assert main(["servers", "start", "--group", "c", "--config", "/nonexistent"]) == code
    captured = capsys.readouterr()
    assert out in captured.out and err in captured.err


def test_start_command_when_the_hub_is_unreachable(monkeypatch, capsys):
    def unreachable(path):
        raise HubError("There is no hub config at /x.")

    monkeypatch.setattr(prestart, "load_settings", unreachable)
    assert main(["servers", "start", "--group", "c", "--config", "/x"]) == 3
    assert "no hub config" in capsys.readouterr().err
