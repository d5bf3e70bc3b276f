"""`pdal-hub doctor`'s decisions: each check from facts to findings, table-driven."""

from __future__ import annotations

import socket

import pytest
from sample_settings import sample_settings

from pdal_hub.doctor import (
    Check,
    Finding,
    PathFacts,
    blocking_directories,
    hub_findings,
    kernel_findings,
    listening_processes,
    pam_findings,
    port_findings,
    proxy_findings,
    render,
    state_findings,
    venv_findings,
    writable_by_others_findings,
)

DIR = 0o040000
FILE = 0o100000


@pytest.mark.parametrize(
    "modes, blocked",
    [
        ({"/": 0o755, "/opt": 0o755, "/opt/jupyterhub-venv": 0o755}, []),
        ({"/": 0o755, "/root": 0o700, "/root/.local/python": 0o755}, ["/root"]),
        ({"/": 0o755, "/srv": 0o750, "/srv/x": 0o700}, ["/srv", "/srv/x"]),
        ({"/": 0o755, "/tmp": 0o1777}, []),
    ],
)
def test_blocking_directories(modes, blocked):
    facts = [PathFacts(path, 0, DIR | mode) for path, mode in modes.items()]
    assert blocking_directories(facts) == blocked


@pytest.mark.parametrize(
    "python_runs, error, singleuser, blocked, expect",
    [
        (True, "", True, [], None),
        (False, "Permission denied", False, ["/root"], "blocked by /root"),
        (False, "Permission denied", False, [], "chmod -R a+rX /opt/v"),
        (True, "", False, [], "cannot execute /opt/v/bin/jupyterhub-singleuser"),
    ],
)
def test_venv_findings(python_runs, error, singleuser, blocked, expect):
    findings = venv_findings("/opt/v", python_runs, error, singleuser, blocked)
    if expect is None:
        assert findings == []
    else:
        (finding,) = findings
        assert expect in finding.problem + finding.fix
    if blocked:
        assert "/usr/bin/python3 -m venv --clear /opt/v" in findings[0].fix


OK_KERNEL = {"argv0": "python", "runnable": True, "dir": "/k/python3"}


@pytest.mark.parametrize(
    "kernels, expected, error, problems",
    [
        ({"python3": OK_KERNEL}, ["python3"], "", []),
        ({"python3": OK_KERNEL}, ["python3", "java"], "", ["kernel 'java' is missing"]),
        (
            {"python3": OK_KERNEL, "ir": {"argv0": "R", "runnable": False, "dir": "/k/ir"}},
            ["python3"],
            "",
            ["kernel 'ir' is broken: its program 'R' (in /k/ir/kernel.json)"],
        ),
        ({}, ["python3"], "ImportError: jupyter_client", ["cannot be read: ImportError"]),
    ],
)
def test_kernel_findings(kernels, expected, error, problems):
    findings = kernel_findings(kernels, expected, error)
    assert len(findings) == len(problems)
    for finding, problem in zip(findings, problems):
        assert problem in finding.problem
        assert finding.fix


@pytest.mark.parametrize(
    "resolved, runs, expect",
    [
        ("/usr/bin/configurable-http-proxy", True, None),
        (None, False, "is missing"),
        ("/usr/bin/configurable-http-proxy", False, "does not run: node: not found"),
    ],
)
def test_proxy_findings(resolved, runs, expect):
    findings = proxy_findings(["configurable-http-proxy"], resolved, runs, "node: not found")
    if expect is None:
        assert findings == []
    else:
        assert expect in findings[0].problem
        assert "npm install -g configurable-http-proxy" in findings[0].fix


@pytest.mark.parametrize(
    "uid, mode, is_link, reasons",
    [
        (0, DIR | 0o755, False, []),
        (0, DIR | 0o775, False, ["group/other writable"]),
        (0, DIR | 0o757, False, ["group/other writable"]),
        (1001, DIR | 0o755, False, ["owned by uid 1001"]),
        (1001, DIR | 0o777, False, ["owned by uid 1001", "group/other writable"]),
        (1001, 0o120777, True, []),
    ],
)
def test_writable_by_others_findings(uid, mode, is_link, reasons):
    facts = PathFacts("/opt/jupyterhub-libs/python", uid, mode, is_link)
    findings = writable_by_others_findings("the shared-library folder", [facts])
    assert len(findings) == (1 if reasons else 0)
    for reason in reasons:
        assert reason in findings[0].problem
    if reasons:
        assert findings[0].fix == (
            "chown -R root:root /opt/jupyterhub-libs/python && "
            "chmod -R go-w /opt/jupyterhub-libs/python"
        )


@pytest.mark.parametrize(
    "dir_uid, dir_mode, files, problems",
    [
        (0, 0o700, [(0, 0o600)], 0),
        (0, 0o755, [(0, 0o600)], 1),
        (1000, 0o700, [], 1),
        (0, 0o700, [(0, 0o644)], 1),
        (0, 0o700, [(0, 0o600), (1000, 0o600), (0, 0o640)], 2),
    ],
)
def test_state_findings(dir_uid, dir_mode, files, problems):
    state = PathFacts("/var/lib/pdal-hub", dir_uid, DIR | dir_mode)
    facts = [
        PathFacts(f"/var/lib/pdal-hub/f{i}", uid, FILE | mode, is_dir=False)
        for i, (uid, mode) in enumerate(files)
    ]
    assert len(state_findings(state, facts)) == problems


def test_state_findings_without_a_state_dir():
    assert state_findings(None, []) == []


@pytest.mark.parametrize(
    "hub_up, listeners, own, expect",
    [
        (True, {8000: [(10, "nginx")]}, set(), []),
        (False, {}, set(), []),
        (False, {8000: [(10, "nginx")]}, set(), ["port 8000 (public) is in use by nginx (pid 10)"]),
        (False, {8001: [(22, "node")]}, {22}, []),
        (
            False,
            {8081: [(5, "python3")], 8001: [(6, "node")]},
            set(),
            ["port 8081 (hub)", "port 8001 (proxy API)"],
        ),
    ],
)
def test_port_findings(hub_up, listeners, own, expect):
    ports = {"public": 8000, "hub": 8081, "proxy API": 8001}
    findings = port_findings(hub_up, ports, listeners, own)
    assert len(findings) == len(expect)
    for finding, text in zip(findings, expect):
        assert text in finding.problem


@pytest.mark.parametrize(
    "hub_up, proxy_up, systemd, expect",
    [
        (True, True, False, None),
        (False, False, True, "systemctl start jupyterhub"),
        (False, False, False, "jupyterhub -f /etc/jupyterhub/jupyterhub_config.py"),
        (True, False, True, "systemctl restart jupyterhub"),
    ],
)
def test_hub_findings(hub_up, proxy_up, systemd, expect):
    findings = hub_findings(hub_up, proxy_up, sample_settings(), systemd)
    if expect is None:
        assert findings == []
    else:
        assert expect in findings[0].fix


def test_pam_findings():
    assert pam_findings("pdal-hub", "/etc/pam.d", True) == []
    (finding,) = pam_findings("pdal-hub", "/etc/pam.d", False)
    assert "/etc/pam.d/pdal-hub is missing" in finding.problem
    assert "pdal-hub install" in finding.fix


def test_render_names_problems_and_fixes():
    checks = [
        Check("config", "x loads"),
        Check("pam", "PAM", [Finding("the PAM service is missing", "run install")]),
        Check("ports", "ports", skipped="in use by the running hub"),
    ]
    text = render(checks)
    assert "ok    config     x loads" in text
    assert "FAIL  pam        the PAM service is missing" in text
    assert "fix: run install" in text
    assert "skip  ports" in text
    assert text.endswith("1 problem(s) found: fix them in order.")
    assert render(checks[:1]).endswith("No problems found.")


def test_listening_processes_finds_this_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        found = listening_processes([port])
    assert [pid for pid, _ in found[port]] == [__import__("os").getpid()]
