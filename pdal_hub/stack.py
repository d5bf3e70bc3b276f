"""The teaching stack: kernels, shared libraries and JupyterLab's classroom defaults.

Kernels are installed where every student's JupyterLab finds them (the hub's
venv, the distribution's /usr/share/jupyter). Shared libraries go under the
libs root; each one is staged next to its destination and moved into place
only when it is complete and verified, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from traitlets import Float, List, Unicode, validate
from traitlets.config import Configurable

from .install import InstallError, InstallPaths, write_file
from .resources import read_data
from .system import run

KERNELS = ("python", "java", "r")

#: Where Jupyter looks for kernelspecs outside the venv (jupyter_core's system path).
SYSTEM_KERNEL_DIRS = (Path("/usr/local/share/jupyter/kernels"), Path("/usr/share/jupyter/kernels"))

#: Checksums a Maven repository publishes next to a file, strongest first.
CHECKSUM_ALGORITHMS = ("sha256", "sha1")

MINIMUM_JAVA = 11

_MAVEN_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_R_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]")
_HEX = re.compile(r"[0-9a-fA-F]+")


class StackError(InstallError):
    """A kernel or library cannot be installed; the message says what to do."""


class NotInRepository(StackError):
    """The repository has no file at the URL asked for."""


class TeachingStack(Configurable):
    """What `pdal-hub install` puts on the machine for the lab's notebooks."""

    kernels = List(
        list(KERNELS),
        config=True,
        help="""
        Kernels every student gets: any of "python", "java" (JJava, needs a JDK)
        and "r" (IRkernel from the distribution). Default: all three, as in the
        lab manual; leave "r" out on a server without R.
        """,
    )

    python_libraries = List(
        ["paho-mqtt"],
        config=True,
        help="""
        Python packages (pip requirements such as "paho-mqtt" or "paho-mqtt>=2")
        installed into <libs root>/python, which every Python kernel has on its path.
        """,
    )

    maven_libraries = List(
        [
            "org.eclipse.paho:org.eclipse.paho.client.mqttv3:1.2.5",
            "com.google.code.gson:gson:2.10.1",
        ],
        config=True,
        help="""
        Java libraries as Maven coordinates group:artifact:version, fetched from
        `maven_repository` into <libs root>/java, which every Java kernel has on its
        class path (no %classpath line needed). Only the named jar is fetched, not
        its dependencies: list those too. Default: the lab manual's Paho MQTT client
        and Gson.
        """,
    )

    maven_repository = Unicode(
        "https://repo1.maven.org/maven2",
        config=True,
        help="""
        Base URL of the Maven repository jars are fetched from (default: Maven
        Central). A jar is placed only if it matches the checksum the repository
        publishes next to it (.sha256 or .sha1).
        """,
    )

    download_timeout = Float(
        60.0,
        config=True,
        help="Seconds to wait for the Maven repository before giving up with an error.",
    )

    @validate("kernels")
    def _check_kernels(self, proposal) -> list[str]:
        unknown = sorted(set(proposal["value"]) - set(KERNELS))
        if unknown:
            raise ValueError(
                f"TeachingStack.kernels: unknown kernel(s) {', '.join(unknown)}; "
                f"choose from {', '.join(KERNELS)}"
            )
        return proposal["value"]

    @validate("maven_repository")
    def _check_repository(self, proposal) -> str:
        url = proposal["value"].rstrip("/")
        if not url.startswith(("https://", "http://", "file://")):
            raise ValueError(
                f"TeachingStack.maven_repository must be an http(s):// or file:// URL, not {url!r}"
            )
        return url


# -- decisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class MavenArtifact:
    """A jar named by its Maven coordinate group:artifact:version."""

    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, coordinate: str) -> MavenArtifact:
        parts = coordinate.strip().split(":")
        if len(parts) != 3:
            raise StackError(
                f"{coordinate!r} is not a Maven coordinate: write group:artifact:version, "
                "e.g. com.google.code.gson:gson:2.10.1"
            )
        for label, part in zip(("group", "artifact", "version"), parts):
            if not _MAVEN_PART.fullmatch(part) or ".." in part:
                raise StackError(
                    f"{coordinate!r}: the {label} {part!r} may only contain letters, digits "
                    "and . _ - (as on the library's Maven page)"
                )
        if parts[2].upper().endswith("SNAPSHOT"):
            raise StackError(
                f"{coordinate!r} is a snapshot; use a released version so every "
                "install gets the same jar"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def jar_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    def jar_url(self, repository: str) -> str:
        group_path = self.group.replace(".", "/")
        return (
            f"{repository.rstrip('/')}/{group_path}/{self.artifact}/{self.version}/{self.jar_name}"
        )


def parse_published_checksum(text: str, algorithm: str) -> str:
    """The hex digest in a repository's .sha1/.sha256 file ("<hex>" or "<hex>  <file>")."""
    expected_length = hashlib.new(algorithm).digest_size * 2
    words = text.split()
    if not words or len(words[0]) != expected_length or not _HEX.fullmatch(words[0]):
        raise StackError(
            f"the repository's {algorithm} checksum file is not a {algorithm} digest "
            f"({text[:80]!r}); the repository may be broken or not a Maven repository"
        )
    return words[0].lower()


def checksum_mismatch(data: bytes, algorithm: str, expected: str) -> str | None:
    """None when `data` has digest `expected`, else the digest it has."""
    actual = hashlib.new(algorithm, data).hexdigest()
    return None if actual == expected.lower() else actual


def python_requirement(text: str) -> Requirement:
    """A pip requirement for the shared Python library: a name, optionally a version."""
    text = text.strip()
    try:
        if text.startswith("-") or "/" in text or "\\" in text:
            raise InvalidRequirement("not a package name")
        requirement = Requirement(text)
    except InvalidRequirement:
        raise StackError(
            f"{text!r} is not a Python package name: give a name from the package "
            "index, optionally with a version, e.g. paho-mqtt or 'paho-mqtt>=2'"
        ) from None
    if requirement.url or requirement.marker:
        raise StackError(
            f"{text!r}: give a package name and version only (no URL or environment marker)"
        )
    return requirement


def debian_r_package(name: str) -> str:
    """The Debian package that carries CRAN package `name` (r-cran-<lowercase name>)."""
    name = name.strip()
    if name.lower().startswith("r-cran-"):
        name = name[len("r-cran-") :]
    if not _R_PACKAGE.fullmatch(name):
        raise StackError(
            f"{name!r} is not an R package name (letters, digits and dots, starting with "
            "a letter), e.g. jsonlite"
        )
    return f"r-cran-{name.lower()}"


def r_package_name(tarball: Path) -> str:
    """The package name of an R source tarball named NAME_VERSION.tar.gz."""
    match = re.fullmatch(
        r"([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])_[0-9][0-9.\-]*\.tar\.gz", tarball.name
    )
    if not match:
        raise StackError(
            f"{tarball.name!r} is not an R source package: expected NAME_VERSION.tar.gz "
            "as made by R CMD build"
        )
    return match.group(1)


def java_major_version(version_output: str) -> int | None:
    """The major version in `java -version` output (1.8 -> 8, 17.0.2 -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@dataclass(frozen=True)
class Prerequisites:
    """What was found on the machine for the kernels."""

    java_version: int | None
    r_found: bool
    ir_kernelspec: Path | None
    java_has_jshell: bool = True


def missing_for_kernels(kernels: Iterable[str], found: Prerequisites) -> list[str]:
    """What the admin must install first, one line each; empty when nothing is missing."""
    missing = []
    if "java" in kernels:
        if found.java_version is None:
            missing.append(
                "Java kernel: no JDK found (java is not on PATH). Install one: "
                "apt-get install default-jdk-headless"
            )
        elif found.java_version < MINIMUM_JAVA:
            missing.append(
                f"Java kernel: JJava needs Java {MINIMUM_JAVA} or newer, found Java "
                f"{found.java_version}. Install a newer one: apt-get install default-jdk-headless"
            )
        elif not found.java_has_jshell:
            missing.append(
                "Java kernel: found a Java runtime without the JDK's jdk.jshell module, "
                "which JJava runs on. Install the JDK: apt-get install default-jdk-headless"
            )
    if "r" in kernels:
        if not found.r_found:
            missing.append(
                "R kernel: R is not installed. Install it and IRkernel: "
                "apt-get install r-base-core r-cran-irkernel"
            )
        elif found.ir_kernelspec is None:
            missing.append(
                "R kernel: R is installed but IRkernel's kernelspec is not registered for all "
                "users. Install it: apt-get install r-cran-irkernel"
            )
    return missing


# -- glue --------------------------------------------------------------------------


def which(name: str) -> str | None:
    """shutil.which (a wrapper so tests can patch it)."""
    return shutil.which(name)


def fetch_url(url: str, timeout: float) -> bytes:
    """The body at `url`; StackError saying what went wrong otherwise."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        error = NotInRepository if e.code in (404, 410) else StackError
        raise error(f"{url} answered HTTP {e.code} ({e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, FileNotFoundError):
            raise NotInRepository(f"{url} does not exist") from None
        raise StackError(
            f"cannot reach {url}: {reason}. Check the network, or point "
            "--maven-repository at a repository you can reach"
        ) from None


def find_prerequisites() -> Prerequisites:
    """Look for a JDK, R and IRkernel's system-wide kernelspec."""
    java_version, has_jshell = None, False
    if which("java"):
        result = run(["java", "-version"])
        java_version = java_major_version(result.stderr + result.stdout)
        has_jshell = "jdk.jshell" in run(["java", "--list-modules"]).stdout
    ir = next((d / "ir" for d in SYSTEM_KERNEL_DIRS if (d / "ir" / "kernel.json").is_file()), None)
    return Prerequisites(java_version, bool(which("R")), ir, has_jshell)


def kernel_dir(paths: InstallPaths) -> Path:
    return paths.venv / "share" / "jupyter" / "kernels"


def install_kernels(paths: InstallPaths, kernels: Iterable[str], dry_run: bool) -> list[str]:
    """Register the kernels for every student, after checking nothing is missing."""
    kernels = list(kernels)
    missing = missing_for_kernels(kernels, find_prerequisites())
    if missing:
        raise StackError(
            "cannot install the kernels; nothing was changed:\n  " + "\n  ".join(missing)
        )
    python = str(paths.venv / "bin" / "python")
    actions = []
    if "python" in kernels:
        spec = kernel_dir(paths) / "python3" / "kernel.json"
        if not spec.is_file() or python not in spec.read_text():
            actions.append(f"registered the Python kernel of {paths.venv}")
            if not dry_run:
                run_or_fail([python, "-m", "ipykernel", "install", "--sys-prefix"], "ipykernel")
    if "java" in kernels and not (kernel_dir(paths) / "java" / "kernel.json").is_file():
        actions.append(f"installed the Java kernel (jjava) into {paths.venv}")
        if not dry_run:
            run_or_fail([python, "-m", "pip", "install", "-q", "jjava"], "jjava")
    return actions


def run_or_fail(cmd: list[str], what: str) -> None:
    """Run `cmd`; StackError with its error output if it fails."""
    result = run(cmd)
    if result.returncode:
        raise StackError(f"installing {what} failed:\n{result.stderr.strip()[-2000:]}")


def library_dir(path: Path) -> None:
    """Create `path` and missing parents readable by all (0755), whatever the umask."""
    if path.exists():
        return
    library_dir(path.parent)
    path.mkdir()
    path.chmod(0o755)


@contextmanager
def staging_dir(parent: Path):
    """A private scratch directory inside `parent` (same filesystem), always removed."""
    library_dir(parent)
    path = Path(tempfile.mkdtemp(prefix=".pdal-hub-staging-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_readable(tree: Path) -> None:
    """Everything under `tree` readable by all, directories enterable, writable by owner only."""
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(path, 0o755)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o755 if st.st_mode & 0o100 else 0o644)


def replace_entries(staged: Path, destination: Path) -> list[str]:
    """Move every entry of `staged` into `destination`, replacing same-named ones."""
    library_dir(destination)
    moved = []
    for entry in sorted(staged.iterdir()):
        target = destination / entry.name
        if target.is_dir() and not target.is_symlink():
            old = staged.parent / f"{entry.name}.pdal-hub-old"
            os.rename(target, old)
            os.rename(entry, target)
            shutil.rmtree(old)
        else:
            os.replace(entry, target)
        moved.append(entry.name)
    return moved


def installed_python_distributions(python_dir: Path) -> dict[str, str]:
    """Canonical name -> version of the packages in the shared Python library."""
    if not python_dir.is_dir():
        return {}
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in distributions(path=[str(python_dir)])
        if d.metadata["Name"]
    }


def venv_distributions(venv: Path) -> dict[str, str]:
    """Canonical name -> version of the packages in the hub's venv (what servers run on)."""
    found: dict[str, str] = {}
    for site in sorted(venv.glob("lib/python3*/site-packages")):
        found.update(installed_python_distributions(site))
    return found


def parse_pip_report(report: dict) -> dict[str, str]:
    """Canonical name -> version of what `pip install --dry-run --report` would install."""
    return {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in report.get("install", [])
    }


def shadowing_conflicts(plan: dict[str, str], venv: dict[str, str]) -> list[str]:
    """Packages of `plan` that would hide a different version of the hub venv's own copy.

    The shared Python library comes first on every server's PYTHONPATH, so such a
    package would replace the venv's copy for JupyterLab itself, not only for notebooks.
    """
    return [
        f"{name} {version} (the hub's venv has {venv[name]})"
        for name, version in sorted(plan.items())
        if name in venv and venv[name] != version
    ]


def add_python_library(paths: InstallPaths, text: str, dry_run: bool = False) -> list[str]:
    """pip-install a package and the dependencies the hub's venv lacks into <libs root>/python."""
    requirement = python_requirement(text)
    python_dir = paths.libs_root / "python"
    installed = installed_python_distributions(python_dir)
    version = installed.get(canonicalize_name(requirement.name))
    if version and requirement.specifier.contains(version, prereleases=True):
        return []
    if dry_run:
        return [f"pip-install {requirement} into {python_dir}"]
    pip = [str(paths.venv / "bin" / "python"), "-m", "pip", "install", "--no-input"]
    pip += ["--prefer-binary", "--disable-pip-version-check", "--quiet"]
    with staging_dir(paths.libs_root) as staging:
        report_file = staging / "pip-report.json"
        result = run(pip + ["--dry-run", "--report", str(report_file), str(requirement)])
        if result.returncode:
            raise StackError(
                f"pip could not install {requirement}; nothing was changed in {python_dir}.\n"
                + pip_error_summary(result.stderr)
            )
        plan = parse_pip_report(json.loads(report_file.read_text()))
        if not plan:
            return [f"{requirement} is already in the hub's venv: every notebook has it"]
        conflicts = shadowing_conflicts(plan, venv_distributions(paths.venv))
        if conflicts:
            raise StackError(
                f"{requirement} would replace packages JupyterLab itself runs on: "
                f"{', '.join(conflicts)}. The shared library comes first on every server's "
                "path, so this would change the hub's own packages. Ask for versions that "
                "work with the hub's venv, or upgrade the hub's venv. Nothing was changed."
            )
        target = staging / "python"
        pinned = [f"{name}=={version}" for name, version in sorted(plan.items())]
        result = run(
            pip + ["--no-deps", "--no-warn-script-location", "--target", str(target)] + pinned
        )
        if result.returncode:
            raise StackError(
                f"pip could not install {requirement}; nothing was changed in {python_dir}.\n"
                + pip_error_summary(result.stderr)
            )
        shutil.rmtree(target / "bin", ignore_errors=True)
        new = installed_python_distributions(target)
        for name in new:
            remove_old_dist_info(python_dir, name)
        make_readable(target)
        replace_entries(target, python_dir)
    listing = ", ".join(f"{name} {v}" for name, v in sorted(new.items()))
    return [f"installed {listing} into {python_dir}"]


def pip_error_summary(stderr: str) -> str:
    """pip's error lines with a hint when the package index was not reachable."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    text = "\n".join(lines[-12:])
    if any(word in stderr for word in ("NewConnectionError", "Temporary failure", "Network is")):
        text += "\nThe package index was not reachable: check the network or pip's proxy settings."
    elif "No matching distribution" in stderr:
        text += "\nCheck the name on the package index (pip index versions NAME)."
    return text


def remove_old_dist_info(python_dir: Path, canonical_name: str) -> None:
    """Remove the metadata of an older version of a package about to be replaced."""
    if not python_dir.is_dir():
        return
    for entry in python_dir.iterdir():
        stem, suffix = os.path.splitext(entry.name)
        if suffix in (".dist-info", ".egg-info") and entry.is_dir() and not entry.is_symlink():
            if canonicalize_name(stem.split("-", 1)[0]) == canonical_name:
                shutil.rmtree(entry)


def fetch_verified(artifact: MavenArtifact, repository: str, timeout: float) -> tuple[bytes, str]:
    """The jar's bytes, checked against the repository's checksum; (data, algorithm)."""
    url = artifact.jar_url(repository)
    published = None
    for algorithm in CHECKSUM_ALGORITHMS:
        try:
            published = fetch_url(f"{url}.{algorithm}", timeout).decode("ascii", "replace")
            break
        except NotInRepository:
            continue
    if published is None:
        try:
            fetch_url(url, timeout)
        except NotInRepository as e:
            raise StackError(
                f"{artifact} is not in {repository} ({e}): check the group, artifact and version"
            ) from None
        raise StackError(
            f"{repository} publishes no checksum (.sha256 or .sha1) for {artifact}; "
            "not installing a jar that cannot be verified"
        )
    expected = parse_published_checksum(published, algorithm)
    data = fetch_url(url, timeout)
    actual = checksum_mismatch(data, algorithm, expected)
    if actual:
        raise StackError(
            f"{artifact}: the downloaded jar does not match the repository's checksum "
            f"({algorithm} {actual}, published {expected}); nothing was installed. Try "
            "again; if it persists the download is being altered or the repository is broken."
        )
    return data, algorithm


def add_maven_library(
    paths: InstallPaths,
    coordinate: str,
    repository: str = TeachingStack.maven_repository.default_value,
    timeout: float = TeachingStack.download_timeout.default_value,
    dry_run: bool = False,
) -> list[str]:
    """Fetch a jar by Maven coordinate, verify it, and place it in <libs root>/java."""
    artifact = MavenArtifact.parse(coordinate)
    java_dir = paths.libs_root / "java"
    destination = java_dir / artifact.jar_name
    if destination.is_file() and not destination.is_symlink():
        return []
    if dry_run:
        return [f"fetch {artifact} from {repository} into {java_dir}"]
    data, algorithm = fetch_verified(artifact, repository, timeout)
    with staging_dir(paths.libs_root) as staging:
        part = staging / artifact.jar_name
        part.write_bytes(data)
        part.chmod(0o644)
        library_dir(java_dir)
        os.replace(part, destination)
    return [f"installed {artifact} as {destination} ({algorithm} verified)"]


def add_r_library(name: str, dry_run: bool = False) -> list[str]:
    """Install an R package for everyone from the distribution (r-cran-<name>)."""
    package = debian_r_package(name)
    status = run(["dpkg-query", "-W", "-f=${Status}", package])
    if status.returncode == 0 and "install ok installed" in status.stdout:
        return []
    if dry_run:
        return [f"apt-get install {package}"]
    if not which("apt-get"):
        raise StackError(f"apt-get is not available: install {package} with your package manager")
    result = run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )
    if result.returncode:
        output = result.stderr.strip() or result.stdout.strip()
        hint = ""
        if "Unable to locate package" in output:
            hint = (
                f"\nThe distribution has no package {package}: check the spelling "
                "(apt-cache search r-cran-), or run apt-get update first."
            )
        elif "Temporary failure" in output or "Could not resolve" in output:
            hint = "\nThe package mirror was not reachable: check the network."
        raise StackError(f"apt-get install {package} failed:\n{output[-1500:]}{hint}")
    return [f"installed {package} (R package {name}) for all users"]


def add_r_source_package(paths: InstallPaths, tarball: Path, dry_run: bool = False) -> list[str]:
    """Install an R source package (NAME_VERSION.tar.gz) into <libs root>/r."""
    name = r_package_name(tarball)
    r_dir = paths.libs_root / "r"
    if not tarball.is_file():
        raise StackError(f"{tarball} does not exist")
    if not which("R"):
        raise StackError("R is not installed: apt-get install r-base-core")
    if dry_run:
        return [f"install R package {name} from {tarball} into {r_dir}"]
    with staging_dir(paths.libs_root) as staging:
        library = staging / "r"
        library.mkdir()
        result = run(["R", "CMD", "INSTALL", "--no-test-load", "-l", str(library), str(tarball)])
        if result.returncode or not (library / name / "DESCRIPTION").is_file():
            raise StackError(
                f"R CMD INSTALL {tarball.name} failed; nothing was changed in {r_dir}:\n"
                + (result.stderr or result.stdout).strip()[-2000:]
            )
        shutil.rmtree(library / f"00LOCK-{name}", ignore_errors=True)
        make_readable(library)
        library_dir(r_dir)
        replace_entries(library, r_dir)
    return [f"installed R package {name} into {r_dir}"]


def lab_settings_file(paths: InstallPaths) -> Path:
    return paths.venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install_lab_settings(paths: InstallPaths, dry_run: bool) -> list[str]:
    """JupyterLab's classroom defaults (no news prompt, no update check, ...)."""
    return write_file(lab_settings_file(paths), read_data("lab-overrides"), 0o644, dry_run)


def install_stack(
    paths: InstallPaths, dry_run: bool, stack: TeachingStack | None = None
) -> list[str]:
    """Kernels, the default shared libraries and the lab settings: the install step."""
    stack = stack or TeachingStack()
    actions = install_kernels(paths, stack.kernels, dry_run)
    for requirement in stack.python_libraries:
        actions += add_python_library(paths, requirement, dry_run)
    for coordinate in stack.maven_libraries:
        actions += add_maven_library(
            paths, coordinate, stack.maven_repository, stack.download_timeout, dry_run
        )
    actions += install_lab_settings(paths, dry_run)
    return actions


def list_libraries(paths: InstallPaths) -> dict[str, list[str]]:
    """What is in the shared library folders, by kind."""
    python = installed_python_distributions(paths.libs_root / "python")
    java_dir, r_dir = paths.libs_root / "java", paths.libs_root / "r"
    return {
        "python": [f"{name} {version}" for name, version in sorted(python.items())],
        "java": sorted(p.name for p in java_dir.glob("*.jar")) if java_dir.is_dir() else [],
        "r": sorted(p.parent.name for p in r_dir.glob("*/DESCRIPTION")) if r_dir.is_dir() else [],
    }
