"""Fixtures for browser tests: a real hub driven by Debian's chromium through Playwright."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "system"))

from hubharness import LinuxUsers, RealHub, mark_system_tests  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    mark_system_tests(items, here, "browser tests")
    if not os.access(CHROMIUM, os.X_OK):
        for item in items:
            if here in Path(item.fspath).parents:
                item.add_marker(
                    pytest.mark.skip(reason=f"{CHROMIUM} missing (apt-get install chromium)")
                )


@pytest.fixture(scope="module")
def browser_users():
    users = LinuxUsers()
    yield users
    users.cleanup()


@pytest.fixture(scope="module")
def browser_hub(browser_users):
    """A real hub with the lab's kernels and classroom settings; yields (hub, admin, password)."""
    from pdal_hub.install import InstallPaths
    from pdal_hub.stack import install_kernels, install_lab_settings

    paths = InstallPaths(venv=Path(sys.prefix))
    install_kernels(paths, ["python", "java", "r"], dry_run=False)
    install_lab_settings(paths, dry_run=False)
    password = secrets.token_urlsafe(12)
    admin = browser_users.create("badm", password)
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-browser-"))
    hub = RealHub(workdir, admin=admin)
    try:
        hub.start(timeout=120)
        yield hub, admin, password
        with contextlib.suppress(TimeoutError):  # a slow stop is no failure: users' cleanup
            hub.stop_all_servers(hub.admin_token(password))  # ends their processes anyway
    finally:
        hub.cleanup()


@pytest.fixture
def screenshots() -> Path:
    """artifacts/screenshots/ in the checkout: CI keeps it, people look at it."""
    path = Path(__file__).parents[2] / "artifacts" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(tmp_path):
    """Debian's chromium, headless, with a fresh profile (not a browser Playwright downloads)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()
