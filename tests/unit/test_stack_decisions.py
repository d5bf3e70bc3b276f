"""The teaching stack's decisions: names, coordinates, checksums, prerequisites, settings."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from pdal_hub.resources import read_data
from pdal_hub.stack import (
    MavenArtifact,
    Prerequisites,
    StackError,
    TeachingStack,
    checksum_mismatch,
    debian_r_package,
    java_major_version,
    missing_for_kernels,
    parse_pip_report,
    parse_published_checksum,
    python_requirement,
    r_package_name,
    shadowing_conflicts,
)

CENTRAL = "https://repo1.maven.org/maven2"


@pytest.mark.parametrize(
    "coordinate, jar_url",
    [
        (
            "org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5",
            f"{CENTRAL}/org/eclipse/paho/org.eclipse.paho.client.mqttv3/1.2.5/"
            "org.eclipse.paho.client.mqttv3-1.2.5.jar",
        ),
        (
            " com.google.code.gson:gson:2.10.1 ",
            f"{CENTRAL}/com/google/code/gson/gson/2.10.1/gson-2.10.1.jar",
        ),
        ("a_b:c-d:1.0-rc1", f"{CENTRAL}/a_b/c-d/1.0-rc1/c-d-1.0-rc1.jar"),
    ],
)
def test_maven_coordinate_names_its_jar(coordinate, jar_url):
    artifact = MavenArtifact.parse(coordinate)
    assert artifact.jar_url(CENTRAL + "/") == jar_url
    assert jar_url.endswith("/" + artifact.jar_name)


@pytest.mark.parametrize(
    "coordinate, message",
    [
        ("gson", "write group:artifact:version"),
        ("com.google.code.gson:gson", "write group:artifact:version"),
        ("com.google.code.gson:gson:jar:2.10.1", "write group:artifact:version"),
        ("com.google.code.gson::2.10.1", "the artifact ''"),
        ("../../etc:passwd:1", "the group '../../etc'"),
        ("com.example:lib:1..2", "the version '1..2'"),
        ("com.example:lib/x:1", "the artifact 'lib/x'"),
        ("com.example:lib:1.0-SNAPSHOT", "use a released version"),
    ],
)
def test_bad_maven_coordinate_is_refused_with_what_to_write(coordinate, message):
    with pytest.raises(StackError) as e:
        MavenArtifact.parse(coordinate)
    assert message in str(e.value)


SHA1 = hashlib.sha1(b"jar").hexdigest()
SHA256 = hashlib.sha256(b"jar").hexdigest()


@pytest.mark.parametrize(
    "published, algorithm, digest",
    [
        (SHA1, "sha1", SHA1),
        (f"{SHA1.upper()}\n", "sha1", SHA1),
        (f"{SHA1}  gson-2.10.1.jar\n", "sha1", SHA1),
        (SHA256, "sha256", SHA256),
    ],
)
def test_published_checksum_is_read(published, algorithm, digest):
    assert parse_published_checksum(published, algorithm) == digest


@pytest.mark.parametrize(
    "published, algorithm",
    [
        ("", "sha1"),
        (SHA1, "sha256"),
        (SHA256, "sha1"),
        ("<html>Not Found</html>", "sha1"),
        ("z" * 40, "sha1"),
    ],
)
def test_malformed_checksum_file_is_an_error(published, algorithm):
    with pytest.raises(StackError, match=f"not a {algorithm} digest"):
        parse_published_checksum(published, algorithm)


@pytest.mark.parametrize(
    "data, algorithm, expected, mismatch",
    [
        (b"jar", "sha1", SHA1, None),
        (b"jar", "sha1", SHA1.upper(), None),
        (b"jar", "sha256", SHA256, None),
        (b"jar!", "sha1", SHA1, hashlib.sha1(b"jar!").hexdigest()),
        (b"", "sha256", SHA256, hashlib.sha256(b"").hexdigest()),
    ],
)
def test_checksum_decides_whether_a_jar_is_placed(data, algorithm, expected, mismatch):
    assert checksum_mismatch(data, algorithm, expected) == mismatch


@pytest.mark.parametrize(
    "text, name, accepts",
    [
        ("paho-mqtt", "paho-mqtt", ["2.2.0", "1.6.1"]),
        (" paho-mqtt>=2 ", "paho-mqtt", ["2.2.0"]),
        ("Paho_MQTT==1.6.1", "Paho_MQTT", ["1.6.1"]),
        ("numpy[extra]", "numpy", ["1.0"]),
    ],
)
def test_python_requirement_is_accepted(text, name, accepts):
    requirement = python_requirement(text)
    assert requirement.name == name
    assert all(requirement.specifier.contains(v) for v in accepts)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is not a Python package name"),
        ("-r requirements.txt", "is not a Python package name"),
        ("--index-url=http://x", "is not a Python package name"),
        ("./local/path", "is not a Python package name"),
        ("paho mqtt", "is not a Python package name"),
        ("pkg @ https://example.org/pkg.whl", "is not a Python package name"),
        ("pkg; python_version>'3'", "no URL or environment marker"),
    ],
)
def test_bad_python_requirement_is_refused(text, message):
    with pytest.raises(StackError) as e:
        python_requirement(text)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "plan, venv, conflicts",
    [
        ({"paho-mqtt": "2.2.0"}, {"tornado": "6.5"}, []),
        ({"requests": "2.32.3"}, {"requests": "2.32.3"}, []),
        (
            {"pandas": "2.2", "tornado": "6.3"},
            {"tornado": "6.5"},
            ["tornado 6.3 (the hub's venv has 6.5)"],
        ),
        (
            {"a": "1", "b": "2"},
            {"a": "0", "b": "1"},
            ["a 1 (the hub's venv has 0)", "b 2 (the hub's venv has 1)"],
        ),
    ],
)
def test_shared_python_packages_must_not_hide_the_venvs_own(plan, venv, conflicts):
    assert shadowing_conflicts(plan, venv) == conflicts


def test_pip_report_lists_what_would_be_installed():
    report = {
        "version": "1",
        "install": [
            {"metadata": {"name": "Paho_MQTT", "version": "2.2.0"}, "requested": True},
            {"metadata": {"name": "six", "version": "1.17.0"}, "requested": False},
        ],
    }
    assert parse_pip_report(report) == {"paho-mqtt": "2.2.0", "six": "1.17.0"}
    assert parse_pip_report({"version": "1", "install": []}) == {}


@pytest.mark.parametrize(
    "name, package",
    [
        ("jsonlite", "r-cran-jsonlite"),
        ("data.table", "r-cran-data.table"),
        ("R6", "r-cran-r6"),
        ("r-cran-ggplot2", "r-cran-ggplot2"),
    ],
)
def test_r_package_maps_to_debian_package(name, package):
    assert debian_r_package(name) == package


@pytest.mark.parametrize("name", ["", "2fast", "json lite", "pkg;rm", "a", "x_y", "pkg."])
def test_bad_r_package_name_is_refused(name):
    with pytest.raises(StackError, match="is not an R package name"):
        debian_r_package(name)


@pytest.mark.parametrize(
    "file, name",
    [
        ("pdalshared_0.1.tar.gz", "pdalshared"),
        ("data.table_1.14.8.tar.gz", "data.table"),
        ("R6_2.5.1-1.tar.gz", "R6"),
    ],
)
def test_r_source_tarball_names_its_package(file, name):
    assert r_package_name(Path("/tmp") / file) == name


@pytest.mark.parametrize("file", ["pkg.tar.gz", "pkg_1.0.zip", "_1.0.tar.gz", "pkg_x.tar.gz"])
def test_bad_r_source_tarball_is_refused(file):
    with pytest.raises(StackError, match="NAME_VERSION.tar.gz"):
        r_package_name(Path(file))


@pytest.mark.parametrize(
    "output, major",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2"', 11),
        ("bash: java: command not found", None),
    ],
)
def test_java_version_is_read(output, major):
    assert java_major_version(output) == major


IR = Path("/usr/share/jupyter/kernels/ir")


@pytest.mark.parametrize(
    "kernels, found, missing",
    [
        (["python", "java", "r"], Prerequisites(17, True, IR), []),
        (["python"], Prerequisites(None, False, None), []),
        (["python", "java"], Prerequisites(None, True, IR), ["no JDK found"]),
        (["java"], Prerequisites(8, True, IR), ["needs Java 11 or newer, found Java 8"]),
        (["java"], Prerequisites(17, True, IR, False), ["without the JDK's jdk.jshell"]),
        (["python", "r"], Prerequisites(17, True, IR, False), []),
        (["r"], Prerequisites(17, False, None), ["R is not installed"]),
        (["r"], Prerequisites(17, True, None), ["apt-get install r-cran-irkernel"]),
        (
            ["python", "java", "r"],
            Prerequisites(None, False, None),
            ["default-jdk-headless", "r-base-core r-cran-irkernel"],
        ),
    ],
)
def test_missing_prerequisites_are_all_named(kernels, found, missing):
    lines = missing_for_kernels(kernels, found)
    assert len(lines) == len(missing)
    for line, fragment in zip(lines, missing):
        assert fragment in line


@pytest.mark.parametrize(
    "config, error",
    [
        ({"kernels": ["python", "julia"]}, "unknown kernel(s) julia"),
        ({"maven_repository": "repo1.maven.org/maven2"}, "must be an http(s):// or file://"),
    ],
)
def test_bad_stack_options_name_the_option(config, error):
    with pytest.raises(Exception) as e:
        TeachingStack(**config)
    assert error in str(e.value)
    assert "TeachingStack." in str(e.value)


def test_default_stack_is_the_lab_manuals():
    stack = TeachingStack()
    assert stack.kernels == ["python", "java", "r"]
    assert stack.python_libraries == ["paho-mqtt"]
    assert stack.maven_libraries == [
        "org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5",
        "com.google.code.gson:gson:2.10.1",
    ]
    assert stack.maven_repository == CENTRAL


def test_lab_overrides_name_real_settings_of_the_installed_jupyterlab():
    """Every overridden setting exists in JupyterLab's schemas with a valid value."""
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    overrides = json.loads(read_data("lab-overrides"))
    assert overrides["@jupyterlab/apputils-extension:notification"] == {
        "fetchNews": "false",
        "checkForUpdates": False,
    }
    for plugin_id, values in overrides.items():
        package, plugin = plugin_id.split(":")
        schema = json.loads((schemas / package / f"{plugin}.json").read_text())
        for key, value in values.items():
            prop = schema["properties"][key]
            if "oneOf" in prop:
                assert value in [choice["const"] for choice in prop["oneOf"]], (plugin_id, key)
            else:
                assert type(value).__name__ == {"boolean": "bool", "string": "str"}.get(
                    prop["type"], type(value).__name__
                ), (plugin_id, key)
