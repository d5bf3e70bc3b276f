"""Who may never use the hub: table-driven tests of the pure decision."""

from __future__ import annotations

import pwd
import re

import pytest

from pdal_hub.accounts import LINUX_USERNAME_PATTERN, AccountPolicy, account_refusal


def passwd(name: str, uid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, uid, "", f"/home/{name}", "/bin/bash"))


@pytest.mark.parametrize(
    "username, account, min_uid, reserved, refused_because",
    [
        ("alice", passwd("alice", 1000), 1000, {"root"}, None),
        ("alice", passwd("alice", 5000), 1000, {"root"}, None),
        ("alice", None, 1000, {"root"}, None),
        ("root", passwd("root", 0), 1000, {"root"}, "reserved account"),
        ("root", None, 1000, {"root"}, "reserved account"),
        ("daemon", passwd("daemon", 1), 1000, {"root"}, "system account"),
        ("svc", passwd("svc", 999), 1000, {"root"}, "system account"),
        ("svc", passwd("svc", 999), 500, {"root"}, None),
        ("teacher", passwd("teacher", 1001), 1000, {"root", "teacher"}, "reserved account"),
    ],
)
def test_account_refusal(username, account, min_uid, reserved, refused_because):
    reason = account_refusal(username, account, min_uid, frozenset(reserved))
    if refused_because is None:
        assert reason is None
    else:
        assert refused_because in reason
        assert repr(username) in reason


def test_system_account_refusal_says_what_to_do():
    reason = account_refusal("svc", passwd("svc", 42), 1000, frozenset())
    assert "uid 42" in reason and "AccountPolicy.min_uid = 1000" in reason
    assert "adduser" in reason


def test_policy_uses_its_lookup(monkeypatch):
    policy = AccountPolicy(min_uid=2000)
    monkeypatch.setattr(policy, "lookup_account", lambda name: passwd(name, 1500))
    assert "system account" in policy.account_refusal("bob")


def test_policy_is_configured_once_for_every_class():
    from traitlets.config import Config

    from pdal_hub.auth import PdalAuthenticator
    from pdal_hub.spawner import PdalSpawner

    config = Config({"AccountPolicy": {"min_uid": 1234, "reserved_users": {"root", "lab"}}})
    assert PdalAuthenticator(config=config).min_uid == 1234
    assert PdalSpawner(config=config, _deprecated_db_session=None).reserved_users == {"root", "lab"}


@pytest.mark.parametrize(
    "name, valid",
    [
        ("alice", True),
        ("a_b-c1", True),
        ("_svc", True),
        ("x" * 32, True),
        ("x" * 33, False),
        ("Alice", False),
        ("1alice", False),
        ("-alice", False),
        ("al ice", False),
        ("al/ice", False),
        ("", False),
        ("machine$", True),
    ],
)
def test_linux_username_pattern(name, valid):
    assert bool(re.match(LINUX_USERNAME_PATTERN, name)) is valid
