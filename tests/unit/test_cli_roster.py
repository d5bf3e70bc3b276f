"""`pdal-hub users`: roster parsing, row checks, and the per-row plan against a fake hub."""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest
from sample_settings import sample_settings

from pdal_hub import users
from pdal_hub.hubapi import HubError
from pdal_hub.users import (
    RosterRow,
    RowResult,
    UserManager,
    first_occurrences,
    parse_roster,
    passwords_csv,
    roster_columns,
    row_refusal,
)


@pytest.mark.parametrize(
    "header, columns, error",
    [
        (["username"], {"username": 0}, None),
        (
            ["User Name", "Full name", "Initial_Password", "Course"],
            {"username": 0, "full_name": 1, "password": 2, "group": 3},
            None,
        ),
        (["login", "group"], {"username": 0, "group": 1}, None),
        (["email", "name"], {"full_name": 1}, "no username column"),
    ],
)
def test_roster_columns(header, columns, error):
    found, problem = roster_columns(header)
    assert found == columns
    assert (problem is None) == (error is None)
    if error:
        assert error in problem


def test_parse_roster_reads_rows_and_reports_malformed_ones():
    text = (
        "username,full name,password,group\n"
        "alice,Alice A,Secret-pass-1,cs101\n"
        "\n"
        'bob,"Builder, Bob"\n'
        "carol,a,b,c,d\n"
    )
    rows, bad, error = parse_roster(text)
    assert error is None
    assert rows == [
        RosterRow(2, "alice", "Alice A", "Secret-pass-1", "cs101"),
        RosterRow(4, "bob", "Builder, Bob", "", ""),
    ]
    (malformed,) = bad
    assert (malformed.line, malformed.username, malformed.status) == (5, "carol", "skipped")
    assert "5 fields, the header has 4" in malformed.reason


@pytest.mark.parametrize(
    "text",
    [
        "username;full name\nann;Ann Smith, PhD\n",
        "username\tfull name\nann\tAnn Smith, PhD\n",
        'username,full name\nann,"Ann Smith, PhD"\n',
    ],
)
def test_parse_roster_accepts_spreadsheet_separators(text):
    rows, bad, error = parse_roster(text)
    assert (rows, bad, error) == ([RosterRow(2, "ann", "Ann Smith, PhD")], [], None)


@pytest.mark.parametrize("text, error", [("", "empty"), ("name\nAda\n", "no username column")])
def test_parse_roster_whole_file_errors(text, error):
    assert error in parse_roster(text)[2]


ACCOUNT = SimpleNamespace(pw_uid=1001)
SYSTEM = SimpleNamespace(pw_uid=33)


@pytest.mark.parametrize(
    "row, account, reason",
    [
        (RosterRow(2, "alice"), None, None),
        (RosterRow(2, "alice", "Alice A", "long-enough", "cs101"), ACCOUNT, None),
        (RosterRow(2, ""), None, "username is empty"),
        (RosterRow(2, "Alice"), None, "lower case ('alice')"),
        (RosterRow(2, "al ice"), None, "invalid username"),
        (RosterRow(2, "-alice"), None, "invalid username"),
        (RosterRow(2, "a" * 40), None, "invalid username"),
        (RosterRow(2, "root"), None, "reserved account"),
        (RosterRow(2, "www-data"), SYSTEM, "system account"),
        (RosterRow(2, "alice", "A:B"), None, "invalid full name"),
        (RosterRow(2, "alice", password="short"), None, "invalid initial password"),
        (RosterRow(2, "alice", password="has:colon-1"), None, "invalid initial password"),
        (RosterRow(2, "alice", group="cs 101"), None, "invalid group"),
    ],
)
def test_row_refusal(row, account, reason):
    refusal = row_refusal(row, account, 1000, frozenset({"root"}))
    if reason is None:
        assert refusal is None
    else:
        assert reason in refusal


def test_first_occurrences_keeps_the_first_and_reports_the_rest():
    rows = [RosterRow(2, "a"), RosterRow(3, "b"), RosterRow(4, "a"), RosterRow(5, "a")]
    kept, duplicates = first_occurrences(rows)
    assert [r.line for r in kept] == [2, 3]
    assert [(d.line, d.reason) for d in duplicates] == [
        (4, "duplicate of line 2"),
        (5, "duplicate of line 2"),
    ]


def test_passwords_csv_lists_only_rows_with_passwords():
    results = [
        RowResult(2, "a", "changed", password="pw-a"),
        RowResult(3, "b", "unchanged"),
        RowResult(4, "c,d", "changed", password="pw,c"),
    ]
    assert passwords_csv(results).splitlines() == [
        "username,initial password",
        "a,pw-a",
        '"c,d","pw,c"',
    ]


class FakeHub:
    """Hub users and groups in memory, with the calls HubAPI makes."""

    def __init__(self, users=(), groups=None, refuse=()):
        self.users = set(users)
        self.groups = {g: list(m) for g, m in (groups or {}).items()}
        self.refuse = set(refuse)
        self.calls = []

    def user(self, name):
        return {"name": name} if name in self.users else None

    def add_user(self, name):
        self.calls.append(("add_user", name))
        if name in self.refuse:
            raise HubError(f"POST /users/{name}: HTTP 400 refused")
        self.users.add(name)

    def group(self, name):
        return {"name": name, "users": self.groups[name]} if name in self.groups else None

    def add_group(self, name):
        self.calls.append(("add_group", name))
        self.groups[name] = []

    def add_group_members(self, name, members):
        self.calls.append(("add_group_members", name, tuple(members)))
        self.groups[name] += members


SETTINGS = sample_settings(config_file="c", cookie_secret_file="/s/cookie", pid_file="/s/pid")


@pytest.mark.parametrize(
    "accounts, hub_users, groups, row, create, status, actions",
    [
        ({}, set(), {}, RosterRow(2, "ann"), False, "skipped", []),
        (
            {},
            set(),
            {},
            RosterRow(2, "ann", group="cs1"),
            True,
            "changed",
            [
                "created Linux account",
                "added to the hub",
                "created hub group cs1",
                "added to group cs1",
            ],
        ),
        ({"ann": ACCOUNT}, set(), {}, RosterRow(2, "ann"), False, "changed", ["added to the hub"]),
        ({"ann": ACCOUNT}, {"ann"}, {}, RosterRow(2, "ann"), True, "unchanged", []),
        (
            {"ann": ACCOUNT},
            {"ann"},
            {"cs1": ["bo"]},
            RosterRow(2, "ann", group="cs1"),
            True,
            "changed",
            ["added to group cs1"],
        ),
        (
            {"ann": ACCOUNT},
            {"ann"},
            {"cs1": ["ann"]},
            RosterRow(2, "ann", group="cs1"),
            True,
            "unchanged",
            [],
        ),
        ({"ann": ACCOUNT}, set(), {}, RosterRow(2, "ann"), True, "failed", []),
        ({"svc": SYSTEM}, set(), {}, RosterRow(2, "svc"), True, "skipped", []),
    ],
)
def test_user_manager_apply(accounts, hub_users, groups, row, create, status, actions):
    hub = FakeHub(hub_users, groups, refuse={"ann"} if status == "failed" else ())
    created = []
    with mock.patch.multiple(
        users,
        lookup_account=lambda name: accounts.get(name),
        create_account=lambda r, password: created.append((r.username, password)),
    ):
        result = UserManager(hub, SETTINGS).apply(row, create)
    assert result.status == status, result.reason
    assert result.actions == actions
    if "created Linux account" in actions:
        assert created and created[0][0] == row.username and result.password == created[0][1]
    else:
        assert not created and not result.password


def test_user_manager_dry_run_changes_nothing():
    hub = FakeHub()
    with mock.patch.multiple(
        users,
        lookup_account=lambda name: None,
        create_account=mock.Mock(side_effect=AssertionError("must not create")),
    ):
        result = UserManager(hub, SETTINGS, dry_run=True).apply(
            RosterRow(2, "ann", group="g"), True
        )
    assert result.status == "changed"
    assert hub.calls == []


def test_roster_password_is_used_for_a_new_account():
    created = []
    with mock.patch.multiple(
        users,
        lookup_account=lambda name: None,
        create_account=lambda r, password: created.append(password),
    ):
        result = UserManager(FakeHub(), SETTINGS).apply(
            RosterRow(2, "ann", password="given-pass-1"), True
        )
    assert created == ["given-pass-1"] and result.password == "given-pass-1"
