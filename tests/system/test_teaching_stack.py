"""The teaching stack on a real hub: Python, Java and R kernels with the shared libraries.

The libraries are installed into the test hub's libs root with pdal-hub's own
stack functions (real pip, real Maven Central, real R CMD INSTALL); a student's
real server runs the code; MQTT goes through a real mosquitto on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import requests
from hubharness import PREFIX, VENV_BIN, free_port, run_code, wait_for

from pdal_hub import stack
from pdal_hub.install import InstallPaths

PAHO = "org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5"
GSON = "com.google.code.gson:gson:2.10.1"


def build_r_package(parent: Path, name: str, function: str, value: str) -> Path:
    """A tiny R source package NAME_0.1.tar.gz with one exported function returning `value`."""
    source = parent / name
    (source / "R").mkdir(parents=True)
    (source / "DESCRIPTION").write_text(textwrap.dedent(f"""\
            Package: {name}
            Version: 0.1
            Title: Test Package {name}
            Description: A package built by the pdal-hub system tests.
            Author: pdal-hub tests
            Maintainer: pdal-hub tests <root@localhost>
            License: MIT
            """))
    (source / "NAMESPACE").write_text(f"export({function})\n")
    (source / "R" / f"{function}.R").write_text(f'{function} <- function() "{value}"\n')
    subprocess.run(
        ["R", "CMD", "build", "--no-build-vignettes", name],
        cwd=parent,
        check=True,
        capture_output=True,
    )
    return parent / f"{name}_0.1.tar.gz"


@pytest.fixture(scope="module")
def stack_paths(hub) -> InstallPaths:
    """The hub's venv and libs root with the lab's kernels, libraries and settings installed."""
    paths = InstallPaths(venv=Path(sys.prefix), libs_root=hub.libs_root)
    stack.install_stack(paths, dry_run=False)
    return paths


@pytest.fixture(scope="module")
def r_packages(stack_paths):
    """A shared R package in the libs root, and a source tarball a student may install."""
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-rpkg-"))
    os.chmod(workdir, 0o755)
    shared = build_r_package(workdir, f"{PREFIX}shared", "shared_greeting", "hello from shared")
    own = build_r_package(workdir, f"{PREFIX}own", "own_greeting", "hello from own")
    os.chmod(own, 0o644)
    assert stack.add_r_source_package(stack_paths, shared)
    yield f"{PREFIX}shared", own
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A real mosquitto on a free 127.0.0.1 port, stopped by its PID."""
    if not shutil.which("mosquitto"):
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    os.chmod(conf.parent, 0o755)
    os.chmod(conf, 0o644)
    proc = subprocess.Popen(
        [shutil.which("mosquitto"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening():
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 20, what="mosquitto to listen")
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


class BrokerWitness:
    """mosquitto_sub in the test process: proof that a message really crossed the broker.

    The kernels publish with the retain flag, so the witness gets the message even
    if it subscribes after it was sent.
    """

    def __init__(self, port: int, topic: str) -> None:
        self.proc = subprocess.Popen(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-t",
                topic,
                "-C",
                "1",
                "-W",
                "120",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )

    def message(self) -> str:
        out, _ = self.proc.communicate(timeout=130)
        return out.strip()


@pytest.fixture(scope="module")
def lab_student(hub, linux_users, admin_token, stack_paths):
    """A student, added by the admin, with a running server."""
    password = secrets.token_urlsafe(12)
    name = linux_users.create("lab", password)
    assert hub.api("POST", "/users", admin_token, json={"usernames": [name]}).status_code == 201
    session, response = hub.login(name, password)
    assert response.status_code == 302
    session.get(f"{hub.url}/hub/spawn", timeout=60)
    hub.wait_server_ready(name, admin_token)
    return name


def test_student_server_offers_python_java_and_r(hub, lab_student, admin_token):
    specs = user_get(hub, lab_student, admin_token, "/api/kernelspecs").json()["kernelspecs"]
    assert {"python3", "java", "ir"} <= set(specs), sorted(specs)


def test_classroom_lab_settings_are_in_effect(hub, lab_student, admin_token):
    plugin = "@jupyterlab/apputils-extension:notification"
    r = user_get(hub, lab_student, admin_token, f"/lab/api/settings/{plugin}")
    defaults = r.json()["schema"]["properties"]  # overrides.json replaces the defaults
    assert defaults["fetchNews"]["default"] == "false"
    assert defaults["checkForUpdates"]["default"] is False


def test_python_kernel_publishes_and_receives_through_mosquitto(
    hub, lab_student, admin_token, broker, stack_paths
):
    topic = f"pdal/{PREFIX}/python"
    witness = BrokerWitness(broker, topic)
    code = textwrap.dedent(f"""
        import queue, paho
        import paho.mqtt.client as mqtt
        received, subscribed = queue.Queue(), queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_subscribe = lambda *args: subscribed.put(True)
        client.on_message = lambda c, u, m: received.put(m.payload.decode())
        client.connect("127.0.0.1", {broker})
        client.loop_start()
        client.subscribe("{topic}", qos=1)
        subscribed.get(timeout=20)
        client.publish("{topic}", "temperature=21.5", qos=1, retain=True).wait_for_publish(20)
        print("received", received.get(timeout=20))
        print("paho from", paho.__file__)
        client.loop_stop()
        client.disconnect()
        """)
    out = run_code(hub, lab_student, admin_token, code, kernel="python3")
    assert "received temperature=21.5" in out
    assert f"paho from {stack_paths.libs_root}/python/paho/" in out
    assert witness.message() == "temperature=21.5"


def test_java_kernel_uses_shared_paho_and_gson_without_classpath(
    hub, lab_student, admin_token, broker, stack_paths
):
    topic = f"pdal/{PREFIX}/java"
    witness = BrokerWitness(broker, topic)
    code = textwrap.dedent(f"""
        import org.eclipse.paho.client.mqttv3.*;
        import org.eclipse.paho.client.mqttv3.persist.MemoryPersistence;
        import com.google.gson.*;
        import java.util.concurrent.*;

        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        MqttClient client = new MqttClient("tcp://127.0.0.1:{broker}", "java-{PREFIX}",
                                           new MemoryPersistence());
        client.connect();
        client.subscribe("{topic}", 1, (t, m) -> received.add(new String(m.getPayload())));
        JsonObject reading = new JsonObject();
        reading.addProperty("sensor", "t1");
        reading.addProperty("value", 21.5);
        MqttMessage message = new MqttMessage(new Gson().toJson(reading).getBytes());
        message.setRetained(true);
        client.publish("{topic}", message);
        String payload = received.poll(20, TimeUnit.SECONDS);
        JsonObject parsed = JsonParser.parseString(payload).getAsJsonObject();
        System.out.println("received " + parsed.get("sensor").getAsString() + " "
                           + parsed.get("value").getAsDouble());
        System.out.println("paho from "
            + MqttClient.class.getProtectionDomain().getCodeSource().getLocation().getPath());
        System.out.println("gson from "
            + Gson.class.getProtectionDomain().getCodeSource().getLocation().getPath());
        client.disconnect();
        client.close();
        """)
    out = run_code(hub, lab_student, admin_token, code, kernel="java", timeout=180)
    java_dir = f"{stack_paths.libs_root}/java"
    assert "received t1 21.5" in out
    assert f"paho from {java_dir}/org.eclipse.paho.client.mqttv3-1.2.5.jar" in out
    assert f"gson from {java_dir}/gson-2.10.1.jar" in out
    assert witness.message() == '{"sensor":"t1","value":21.5}'


def test_r_kernel_loads_shared_package_and_installs_into_own_library(
    hub, lab_student, admin_token, r_packages, stack_paths
):
    shared, own_tarball = r_packages
    own = own_tarball.name.split("_")[0]
    code = textwrap.dedent(f"""
        library({shared})
        cat("shared:", shared_greeting(), "\\n")
        cat("shared from:", find.package("{shared}"), "\\n")
        cat("shared writable:", file.access("{stack_paths.libs_root}/r", 2) == 0, "\\n")
        install.packages("{own_tarball}", repos = NULL, type = "source")
        library({own})
        cat("own:", own_greeting(), "\\n")
        cat("own from:", find.package("{own}"), "\\n")
        """)
    out = run_code(hub, lab_student, admin_token, code, kernel="ir", timeout=180)
    home = Path(os.path.expanduser(f"~{lab_student}"))
    assert "shared: hello from shared" in out
    assert f"shared from: {stack_paths.libs_root}/r/{shared}" in out
    assert "shared writable: FALSE" in out
    assert "own: hello from own" in out
    own_from = out.split("own from:")[1].split()[0]
    assert Path(own_from).is_relative_to(home / "R"), out
    assert Path(own_from).stat().st_uid == home.stat().st_uid


def test_libs_add_refuses_bad_input_clearly_and_leaves_nothing(tmp_path):
    libs_root = Path(f"/opt/{PREFIX}-libs-add")
    repo = tmp_path / "repo"
    jar_dir = repo / "org/example/broken/1.0"
    jar_dir.mkdir(parents=True)
    (jar_dir / "broken-1.0.jar").write_bytes(b"PK not the jar that was published")
    (jar_dir / "broken-1.0.jar.sha1").write_text(hashlib.sha1(b"the real jar").hexdigest())
    try:
        add = [str(VENV_BIN / "pdal-hub"), "libs", "add", "--libs-root", str(libs_root)]
        bad_checksum = subprocess.run(
            add + ["--maven-repository", f"file://{repo}", "maven", "org.example:broken:1.0"],
            capture_output=True,
            text=True,
        )
        assert bad_checksum.returncode == 1
        assert "does not match the repository's checksum" in bad_checksum.stderr
        unknown = subprocess.run(
            add + ["maven", "com.google.code.gson:gson:0.0.404"], capture_output=True, text=True
        )
        assert unknown.returncode == 1
        assert "is not in https://repo1.maven.org/maven2" in unknown.stderr
        assert "HTTP 404" in unknown.stderr
        bad_name = subprocess.run(add + ["python", "no/such"], capture_output=True, text=True)
        assert bad_name.returncode == 1
        assert "is not a Python package name" in bad_name.stderr
        no_such = subprocess.run(
            add + ["python", f"{PREFIX}-no-such-package"], capture_output=True, text=True
        )
        assert no_such.returncode == 1
        assert "No matching distribution" in no_such.stderr
        present = subprocess.run(add + ["r", "jsonlite"], capture_output=True, text=True)
        assert present.returncode == 0, present.stderr  # r-cran-irkernel brings r-cran-jsonlite
        assert "already installed" in present.stdout
        unknown_r = subprocess.run(add + ["r", f"{PREFIX}nosuch"], capture_output=True, text=True)
        assert unknown_r.returncode == 1
        assert f"no package r-cran-{PREFIX}nosuch" in unknown_r.stderr
        leftovers = [p for p in libs_root.rglob("*") if p.is_file()] if libs_root.exists() else []
        assert leftovers == []

        good = subprocess.run(add + ["maven", GSON], capture_output=True, text=True)
        assert good.returncode == 0, good.stderr
        assert "sha256 verified" in good.stdout
        jar = libs_root / "java" / "gson-2.10.1.jar"
        assert oct(jar.stat().st_mode & 0o777) == "0o644"
        again = subprocess.run(add + ["maven", GSON], capture_output=True, text=True)
        assert "already installed" in again.stdout
    finally:
        shutil.rmtree(libs_root, ignore_errors=True)


def user_get(hub, username: str, token: str, path: str) -> requests.Response:
    """GET `path` of a student's server (an admin token may, as admins support students)."""
    r = requests.get(
        f"{hub.url}/user/{username}{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    return r
