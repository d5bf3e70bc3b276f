"""Fixtures for tests against a real hub (root only)."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import pytest
from hubharness import LinuxUsers, RealHub, mark_system_tests


def pytest_collection_modifyitems(config, items):
    mark_system_tests(items, Path(__file__).parent, "system tests")


@pytest.fixture(scope="session")
def linux_users():
    users = LinuxUsers()
    yield users
    users.cleanup()


@pytest.fixture(scope="session")
def admin(linux_users) -> tuple[str, str]:
    password = secrets.token_urlsafe(12)
    return linux_users.create("adm", password), password


@pytest.fixture(scope="session")
def hub(admin, linux_users):
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-system-"))
    real_hub = RealHub(workdir, admin=admin[0])
    real_hub.start()
    yield real_hub
    try:
        if real_hub.proc and real_hub.proc.poll() is None:
            real_hub.stop_all_servers(real_hub.admin_token(admin[1]))
    finally:
        real_hub.cleanup()


@pytest.fixture(scope="session")
def admin_token(hub, admin) -> str:
    return hub.admin_token(admin[1])


@pytest.fixture
def student(linux_users, hub, admin_token):
    """A fresh Linux account with a password, added to the hub by the admin."""
    counter = getattr(student, "counter", 0) + 1
    student.counter = counter
    password = secrets.token_urlsafe(12)
    name = linux_users.create(f"s{counter}", password)
    r = hub.api("POST", "/users", admin_token, json={"usernames": [name]})
    assert r.status_code == 201, r.text
    return name, password
