"""An instructor and a student meet pdal-hub in a real browser (Debian's chromium)."""

from __future__ import annotations

import json
import pwd
import re
import secrets
from pathlib import Path

from playwright.sync_api import expect


def log_in(page, url: str, username: str, password: str, next_url: str = "") -> None:
    page.goto(f"{url}/hub/login" + (f"?next={next_url}" if next_url else ""))
    page.locator("#username_input").fill(username)
    page.locator("#password_input").fill(password)
    page.locator("#login_submit").click()


def test_admin_adds_student_who_gets_lab_with_python_java_and_r(
    browser, browser_hub, browser_users, screenshots
):
    hub, admin, admin_password = browser_hub
    student_password = secrets.token_urlsafe(12)
    student = browser_users.create("bstu", student_password)
    home = Path(pwd.getpwnam(student).pw_dir)
    page = browser.new_page()

    log_in(page, hub.url, admin, admin_password, next_url="/hub/admin")
    page.wait_for_url(re.compile(r"/hub/admin"))
    page.get_by_role("button", name="Add Users").click()
    page.locator("textarea").fill(student)
    page.get_by_role("button", name="Add Users").click()
    expect(page.get_by_test_id(f"user-name-div-{student}")).to_be_visible()
    page.screenshot(path=str(screenshots / "admin-panel.png"))
    page.goto(f"{hub.url}/hub/logout")

    log_in(page, hub.url, student, student_password)
    page.wait_for_url(re.compile(rf"/user/{student}/lab"), timeout=120_000)
    launcher = page.locator(".jp-Launcher")
    expect(launcher).to_be_visible(timeout=120_000)
    notebook_section = launcher.locator(".jp-Launcher-section", has_text="Notebook")
    expect(notebook_section.locator(".jp-LauncherCard")).to_have_count(3)
    labels = notebook_section.locator(".jp-LauncherCard-label").all_inner_texts()
    assert sorted(label.strip() for label in labels) == [
        "Java (jjava)",
        "Python 3 (ipykernel)",
        "R",
    ]
    page_config = json.loads(page.locator("#jupyter-config-data").text_content())
    assert page_config["serverRoot"] in ("~/notebooks", f"{home}/notebooks")
    page.wait_for_timeout(3000)  # the news question, if enabled, shows up shortly after load
    expect(page.get_by_text("official Jupyter news")).to_have_count(0)
    expect(page.locator('[data-id="extensionmanager.main-view"]')).to_have_count(0)
    page.screenshot(path=str(screenshots / "student-launcher.png"))

    # A notebook started from the launcher lands in ~/notebooks on disk.
    notebook_section.locator(".jp-LauncherCard", has_text="Python 3").click()
    expect(page.locator(".jp-DirListing-item", has_text="Untitled.ipynb")).to_be_visible()
    assert (home / "notebooks" / "Untitled.ipynb").is_file()
