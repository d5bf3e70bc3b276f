"""The teaching stack's glue with patched downloads and commands: nothing half-installed."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from pdal_hub import stack
from pdal_hub.cli import main
from pdal_hub.install import InstallPaths

GSON = "com.google.code.gson:gson:2.10.1"
GSON_URL = "https://repo1.maven.org/maven2/com/google/code/gson/gson/2.10.1/gson-2.10.1.jar"
JAR = b"PK\x03\x04 a jar"


@pytest.fixture
def paths(tmp_path) -> InstallPaths:
    return InstallPaths(venv=tmp_path / "venv", libs_root=tmp_path / "libs")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Answer fetch_url from `files`; other URLs are not in the repository. Returns the log."""
    asked = []

    def fetch_url(url, timeout):
        asked.append(url)
        if url not in files:
            raise stack.NotInRepository(f"{url} answered HTTP 404 (Not Found)")
        return files[url]

    monkeypatch.setattr(stack, "fetch_url", fetch_url)
    return asked


def test_verified_jar_is_placed_readable(monkeypatch, paths):
    serve(
        monkeypatch, {GSON_URL: JAR, GSON_URL + ".sha256": hashlib.sha256(JAR).hexdigest().encode()}
    )
    actions = stack.add_maven_library(paths, GSON)
    jar = paths.libs_root / "java" / "gson-2.10.1.jar"
    assert jar.read_bytes() == JAR
    assert oct(jar.stat().st_mode & 0o777) == "0o644"
    assert actions == [f"installed {GSON} as {jar} (sha256 verified)"]
    assert files_under(paths.libs_root) == ["java", "java/gson-2.10.1.jar"]


def test_library_folders_are_readable_by_all_whatever_the_umask(monkeypatch, paths):
    serve(monkeypatch, {GSON_URL: JAR, GSON_URL + ".sha1": hashlib.sha1(JAR).hexdigest().encode()})
    old_umask = os.umask(0o077)
    try:
        stack.add_maven_library(paths, GSON)
    finally:
        os.umask(old_umask)
    for path in (paths.libs_root, paths.libs_root / "java"):
        assert oct(path.stat().st_mode & 0o777) == "0o755", path
    assert oct((paths.libs_root / "java" / "gson-2.10.1.jar").stat().st_mode & 0o777) == "0o644"


def test_sha1_is_used_when_the_repository_has_no_sha256(monkeypatch, paths):
    asked = serve(
        monkeypatch, {GSON_URL: JAR, GSON_URL + ".sha1": hashlib.sha1(JAR).hexdigest().encode()}
    )
    assert "(sha1 verified)" in stack.add_maven_library(paths, GSON)[0]
    assert asked == [GSON_URL + ".sha256", GSON_URL + ".sha1", GSON_URL]


def test_wrong_checksum_places_nothing(monkeypatch, paths):
    serve(
        monkeypatch,
        {GSON_URL: JAR, GSON_URL + ".sha256": hashlib.sha256(b"other").hexdigest().encode()},
    )
    with pytest.raises(stack.StackError, match="does not match the repository's checksum"):
        stack.add_maven_library(paths, GSON)
    assert [f for f in files_under(paths.libs_root) if f.endswith(".jar")] == []


def test_jar_without_published_checksum_is_refused(monkeypatch, paths):
    serve(monkeypatch, {GSON_URL: JAR})
    with pytest.raises(stack.StackError, match="publishes no checksum"):
        stack.add_maven_library(paths, GSON)
    assert not (paths.libs_root / "java" / "gson-2.10.1.jar").exists()


def test_unknown_artifact_says_check_the_coordinate(monkeypatch, paths):
    serve(monkeypatch, {})
    with pytest.raises(stack.StackError, match="check the group, artifact and version"):
        stack.add_maven_library(paths, "com.google.code.gson:gson:0.0.1")


def test_unreachable_repository_says_check_the_network(paths):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(stack.StackError, match="cannot reach .* Check the network"):
        stack.add_maven_library(paths, GSON, repository=f"http://127.0.0.1:{port}", timeout=5)
    assert files_under(paths.libs_root) == []


def test_present_jar_is_not_fetched_again(monkeypatch, paths):
    asked = serve(monkeypatch, {})
    (paths.libs_root / "java").mkdir(parents=True)
    (paths.libs_root / "java" / "gson-2.10.1.jar").write_bytes(JAR)
    assert stack.add_maven_library(paths, GSON) == []
    assert asked == []


def fake_pip(fail: bool = False, outside: Path = Path("/nonexistent")):
    """A stand-in for `pip install --target DIR`: writes a small package, or fails.

    The package has a symlink to `outside`, which must keep its mode.
    """
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if fail:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")
        if "--report" in cmd:
            report = {"install": [{"metadata": {"name": "paho-mqtt", "version": "2.2.0"}}]}
            Path(cmd[cmd.index("--report") + 1]).write_text(json.dumps(report))
            return subprocess.CompletedProcess(cmd, 0, "", "")
        assert "--no-deps" in cmd and cmd[-1] == "paho-mqtt==2.2.0"
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "paho" / "mqtt").mkdir(parents=True)
        (target / "paho" / "mqtt" / "client.py").write_text("VERSION = 2\n")
        info = target / "paho_mqtt-2.2.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paho-mqtt\nVersion: 2.2.0\n")
        (target / "bin").mkdir()
        (target / "bin" / "tool").write_text("#!/bin/sh\n")
        (target / "paho" / "outside").symlink_to(outside)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    run.calls = calls
    return run


def test_python_library_is_moved_into_place_after_pip_succeeds(monkeypatch, paths):
    old = paths.libs_root / "python" / "paho_mqtt-1.6.1.dist-info"
    old.mkdir(parents=True)
    (old / "METADATA").write_text("Metadata-Version: 2.1\nName: paho-mqtt\nVersion: 1.6.1\n")
    outside = paths.libs_root.parent / "private"
    outside.write_text("secret")
    outside.chmod(0o600)
    monkeypatch.setattr(stack, "run", fake_pip(outside=outside))
    actions = stack.add_python_library(paths, "paho-mqtt>=2")
    assert actions == [f"installed paho-mqtt 2.2.0 into {paths.libs_root / 'python'}"]
    assert oct(outside.stat().st_mode & 0o777) == "0o600"
    assert files_under(paths.libs_root) == [
        "python",
        "python/paho",
        "python/paho/mqtt",
        "python/paho/mqtt/client.py",
        "python/paho/outside",
        "python/paho_mqtt-2.2.0.dist-info",
        "python/paho_mqtt-2.2.0.dist-info/METADATA",
    ]
    assert oct((paths.libs_root / "python/paho/mqtt/client.py").stat().st_mode & 0o777) == "0o644"


def test_satisfied_python_library_is_not_installed_again(monkeypatch, paths):
    monkeypatch.setattr(stack, "run", fake_pip())
    stack.add_python_library(paths, "paho-mqtt")
    pip = fake_pip()
    monkeypatch.setattr(stack, "run", pip)
    assert stack.add_python_library(paths, "paho-mqtt>=2") == []
    assert pip.calls == []


def test_failed_pip_leaves_nothing(monkeypatch, paths):
    monkeypatch.setattr(stack, "run", fake_pip(fail=True))
    with pytest.raises(stack.StackError, match="nothing was changed.*\n.*No matching distribution"):
        stack.add_python_library(paths, "no-such-package")
    assert files_under(paths.libs_root) == []


def test_failed_r_install_leaves_nothing(monkeypatch, paths, tmp_path):
    tarball = tmp_path / "broken_0.1.tar.gz"
    tarball.write_bytes(b"not a tarball")
    monkeypatch.setattr(stack, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(
        stack, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "ERROR: bad")
    )
    with pytest.raises(stack.StackError, match="R CMD INSTALL broken_0.1.tar.gz failed"):
        stack.add_r_source_package(paths, tarball)
    assert files_under(paths.libs_root) == []


def test_missing_debian_r_package_says_check_the_name(monkeypatch):
    def run(cmd, **kwargs):
        if cmd[0] == "dpkg-query":
            return subprocess.CompletedProcess(cmd, 1, "", "no packages found")
        return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package r-cran-nope")

    monkeypatch.setattr(stack, "run", run)
    monkeypatch.setattr(stack, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(stack.StackError, match="has no package r-cran-nope"):
        stack.add_r_library("nope")


def test_missing_jdk_and_r_stop_kernel_install_before_any_change(monkeypatch, paths):
    commands = []
    monkeypatch.setattr(stack, "which", lambda name: None)
    monkeypatch.setattr(stack, "run", lambda cmd, **kw: commands.append(cmd))
    monkeypatch.setattr(stack, "SYSTEM_KERNEL_DIRS", ())
    with pytest.raises(stack.StackError) as e:
        stack.install_kernels(paths, ["python", "java", "r"], dry_run=False)
    assert "nothing was changed" in str(e.value)
    assert "default-jdk-headless" in str(e.value) and "r-cran-irkernel" in str(e.value)
    assert commands == []


def test_dry_run_of_the_whole_stack_changes_and_fetches_nothing(monkeypatch, paths):
    asked = serve(monkeypatch, {})
    monkeypatch.setattr(
        stack, "find_prerequisites", lambda: stack.Prerequisites(17, True, Path("/ir"))
    )
    monkeypatch.setattr(stack, "run", lambda cmd, **kw: pytest.fail(f"ran {cmd}"))
    actions = stack.install_stack(paths, dry_run=True)
    assert any("jjava" in a for a in actions)
    assert any("paho-mqtt" in a for a in actions)
    assert any("gson" in a for a in actions)
    assert any("overrides.json" in a for a in actions)
    assert asked == [] and not paths.libs_root.exists() and not paths.venv.exists()


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)


@pytest.mark.parametrize(
    "argv, error",
    [
        (["libs", "add", "maven", "gson"], "is not a Maven coordinate"),
        (["libs", "add", "python", "-r"], None),
        (["libs", "add", "python", "a/b"], "is not a Python package name"),
        (["libs", "add", "r", "2bad"], "is not an R package name"),
        (["libs", "add", "--maven-repository", "ftp://x", "maven", GSON], "http(s):// or file://"),
    ],
)
def test_cli_refuses_bad_names_clearly(as_root, paths, capsys, argv, error):
    try:
        code = main(argv + ["--libs-root", str(paths.libs_root)])
    except SystemExit as e:  # argparse refuses an option-like name itself
        code = e.code
    assert code in (1, 2)
    if error:
        assert error in capsys.readouterr().err
    assert files_under(paths.libs_root) == []


def test_cli_lists_shared_libraries(paths, capsys):
    (paths.libs_root / "java").mkdir(parents=True)
    (paths.libs_root / "java" / "gson-2.10.1.jar").write_bytes(JAR)
    assert main(["libs", "list", "--libs-root", str(paths.libs_root)]) == 0
    out = capsys.readouterr().out
    assert "gson-2.10.1.jar" in out and "python" in out and "(none)" in out


@pytest.mark.parametrize("command", [["kernels"], ["libs"], ["stack"], ["libs", "add"]])
def test_cli_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main(command + ["--help"])
    assert e.value.code == 0
    assert "usage: pdal-hub" in capsys.readouterr().out


def pip_reporting(plan: list[tuple[str, str]]):
    """A pip whose dry run reports `plan`; a real install must not happen."""

    def run(cmd, **kwargs):
        assert "--report" in cmd, f"installed although it should not: {cmd}"
        report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in plan]}
        Path(cmd[cmd.index("--report") + 1]).write_text(json.dumps(report))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


def test_package_the_venv_already_has_is_not_copied(monkeypatch, paths):
    monkeypatch.setattr(stack, "run", pip_reporting([]))
    assert stack.add_python_library(paths, "requests") == [
        "requests is already in the hub's venv: every notebook has it"
    ]
    assert [f for f in files_under(paths.libs_root) if not f.startswith(".")] == []


def test_package_that_would_hide_the_venvs_own_is_refused(monkeypatch, paths):
    site = paths.venv / "lib" / "python3.11" / "site-packages" / "tornado-6.5.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: tornado\nVersion: 6.5\n")
    monkeypatch.setattr(stack, "run", pip_reporting([("oldweb", "1.0"), ("tornado", "5.1")]))
    with pytest.raises(stack.StackError) as e:
        stack.add_python_library(paths, "oldweb")
    assert "tornado 5.1 (the hub's venv has 6.5)" in str(e.value)
    assert "Nothing was changed" in str(e.value)
    assert files_under(paths.libs_root) == []
