"""`pdal-hub status`: server process trees, idle times and the rendered table."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pdal_hub.status import ProcessInfo, human_duration, idle_seconds, render, server_tree

PROCESSES = {
    1: ProcessInfo(0, 0, "/sbin/init", 10),
    100: ProcessInfo(1, 0, "jupyterhub -f /etc/jupyterhub/jupyterhub_config.py", 100),
    200: ProcessInfo(100, 1001, "/opt/v/bin/python /opt/v/bin/jupyterhub-singleuser", 1000),
    201: ProcessInfo(200, 1001, "python -m ipykernel_launcher -f k.json", 500),
    202: ProcessInfo(201, 1001, "sleep 100", 5),
    300: ProcessInfo(1, 1001, "bash (ssh session)", 7),
    400: ProcessInfo(100, 1002, "/opt/v/bin/python /opt/v/bin/jupyterhub-singleuser", 900),
}


@pytest.mark.parametrize(
    "uid, pids",
    [(1001, {200, 201, 202}), (1002, {400}), (1003, set()), (0, set())],
)
def test_server_tree(uid, pids):
    assert server_tree(PROCESSES, uid, "singleuser") == pids


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, None),
        ("", None),
        ("2026-01-01T11:59:00Z", 60.0),
        ("2026-01-01T11:00:00.000000Z", 3600.0),
        ("2026-01-01T12:00:00+00:00", 0.0),
        ("2026-01-01T11:59:30", 30.0),
        ("2026-01-01T12:05:00Z", 0.0),
    ],
)
def test_idle_seconds(value, seconds):
    assert idle_seconds(value, NOW) == seconds


@pytest.mark.parametrize("seconds, text", [(None, "-"), (5, "5s"), (120, "2m"), (5400, "1.5h")])
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_render_lists_servers_and_active_users():
    status = {
        "hub": {"url": "http://127.0.0.1:8081/hub/api", "up": True},
        "proxy": {"url": "http://127.0.0.1:8000", "up": True},
        "active_minutes": 15,
        "users": 3,
        "active": ["ann"],
        "servers": [
            {
                "user": "ann",
                "state": "ready",
                "started": "2026-01-01T11:00:00Z",
                "idle_seconds": 120,
                "rss_bytes": 150 * 2**20,
                "processes": 3,
            }
        ],
    }
    text = render(status)
    assert "users  3 in the hub, 1 active in the last 15 minutes: ann" in text
    assert "ann                  ready        150 MiB     2m" in text
    assert "1 server(s) running, 150 MiB in all" in text


def test_render_a_down_hub_points_to_doctor():
    status = {
        "hub": {"url": "u", "up": False},
        "proxy": {"url": "p", "up": False},
        "active_minutes": 15,
        "users": 0,
        "active": [],
        "servers": [],
    }
    text = render(status)
    assert "hub    DOWN" in text and "pdal-hub doctor" in text
