"""`pdal-hub doctor`: check an installation and name each problem with its fix.

Each check is a pure function from facts (modes, owners, probe results) to
findings, so the decisions are tested table-driven; `gather_*` functions and
`run_doctor` collect the facts from the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .accounts import lookup_account
from .hubapi import HubError, HubSettings, load_settings, run

#: Default account without privileges that stands in for a student (--probe-user).
STUDENT_STANDIN = "nobody"
#: PATH of the hub under the shipped systemd unit; the venv's bin/ comes first.
UNIT_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_KERNELS = ("python3", "java", "ir")


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong and the command or edit that fixes it."""

    problem: str
    fix: str


@dataclass
class Check:
    """The outcome of one check: findings (empty when fine) and what was checked."""

    name: str
    checked: str
    findings: list[Finding] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class PathFacts:
    """What doctor needs to know about one path (from lstat)."""

    path: str
    uid: int
    mode: int
    is_link: bool = False
    is_dir: bool = True


# -- pure checks -------------------------------------------------------------------


def blocking_directories(ancestors: Iterable[PathFacts]) -> list[str]:
    """Directories on the way to a file that other users cannot enter (no o+x)."""
    return [a.path for a in ancestors if a.is_dir and not a.mode & 0o001]


def venv_findings(
    venv: str,
    python_runs: bool,
    probe_error: str,
    singleuser_ok: bool,
    blocked: list[str],
) -> list[Finding]:
    """Can a student (an unprivileged account) run the venv's python and jupyterhub-singleuser?"""
    rebuild = (
        f"rebuild the venv from the system Python: /usr/bin/python3 -m venv --clear {venv} "
        f"&& {venv}/bin/pip install pdal-hub, then run `pdal-hub install`"
    )
    if not python_runs:
        where = f" (blocked by {', '.join(blocked)}: mode without o+x)" if blocked else ""
        detail = f": {probe_error}" if probe_error else ""
        return [
            Finding(
                f"students cannot execute the hub venv's python {venv}/bin/python{where}"
                f"{detail}; every server start would fail with 'Permission denied'",
                rebuild if blocked else f"chmod -R a+rX {venv}, or {rebuild}",
            )
        ]
    if not singleuser_ok:
        return [
            Finding(
                f"students cannot execute {venv}/bin/jupyterhub-singleuser",
                f"chmod -R a+rX {venv} (or reinstall: {venv}/bin/pip install "
                "--force-reinstall jupyterhub)",
            )
        ]
    return []


def kernel_findings(
    kernels: dict[str, dict], expected: Iterable[str], error: str = ""
) -> list[Finding]:
    """Kernels students need that are missing, and kernelspecs whose program cannot run.

    `kernels` maps a kernelspec name to ``{"argv0": ..., "runnable": bool, "dir": ...}``
    as seen by an unprivileged account.
    """
    if error:
        return [
            Finding(
                f"the list of kernels cannot be read: {error}",
                "reinstall the kernel tooling: "
                "<venv>/bin/pip install --force-reinstall jupyter_client",
            )
        ]
    findings = [
        Finding(
            f"kernel {name!r} is missing: students cannot open {name} notebooks",
            "run `pdal-hub install` (it installs the Python, Java and R kernels)",
        )
        for name in expected
        if name not in kernels
    ]
    for name, info in sorted(kernels.items()):
        if not info.get("runnable"):
            findings.append(
                Finding(
                    f"kernel {name!r} is broken: its program {info.get('argv0')!r} "
                    f"(in {info.get('dir')}/kernel.json) cannot be executed by students",
                    f"reinstall that kernel (`pdal-hub install`), or remove it: "
                    f"jupyter kernelspec remove {name}",
                )
            )
    return findings


def proxy_findings(
    command: list[str], resolved: str | None, runs: bool, error: str
) -> list[Finding]:
    """Is configurable-http-proxy installed where the hub will look for it, and does it run?"""
    program = command[0] if command else "configurable-http-proxy"
    fix = "install it: npm install -g configurable-http-proxy (or run `pdal-hub install`)"
    if not resolved:
        return [Finding(f"the proxy {program!r} is missing: the hub cannot start", fix)]
    if not runs:
        return [Finding(f"the proxy {resolved} does not run: {error}", f"reinstall it: {fix[11:]}")]
    return []


def writable_by_others_findings(what: str, entries: Iterable[PathFacts]) -> list[Finding]:
    """Paths students could change: not owned by root, or group/other writable."""
    findings = []
    for entry in entries:
        if entry.is_link:
            continue
        reasons = []
        if entry.uid != 0:
            reasons.append(f"owned by uid {entry.uid}, not root")
        if entry.mode & 0o022:
            reasons.append(f"mode {oct(stat.S_IMODE(entry.mode))} is group/other writable")
        if reasons:
            findings.append(
                Finding(
                    f"{what} {entry.path} can be changed by others ({'; '.join(reasons)})",
                    f"chown -R root:root {entry.path} && chmod -R go-w {entry.path}",
                )
            )
    return findings


def missing_path_findings(what: str, path: str, exists: bool, fix: str) -> list[Finding]:
    return [] if exists else [Finding(f"{what} {path} is missing", fix)]


def state_findings(state_dir: PathFacts | None, files: Iterable[PathFacts]) -> list[Finding]:
    """The state directory and its files (cookie secret, database, token) are root-only."""
    if state_dir is None:
        return []
    findings = []
    if state_dir.is_link or state_dir.uid != 0 or state_dir.mode & 0o077:
        findings.append(
            Finding(
                f"the state directory {state_dir.path} is open to others "
                f"(owner uid {state_dir.uid}, mode {oct(stat.S_IMODE(state_dir.mode))})",
                f"chown root:root {state_dir.path} && chmod 0700 {state_dir.path}",
            )
        )
    for f in files:
        if f.uid != 0 or f.mode & 0o077:
            findings.append(
                Finding(
                    f"state file {f.path} is readable or writable by others "
                    f"(owner uid {f.uid}, mode {oct(stat.S_IMODE(f.mode))}): "
                    "with it anyone could act as any user",
                    f"chown root:root {f.path} && chmod 0600 {f.path}",
                )
            )
    return findings


def port_findings(
    hub_up: bool,
    ports: dict[str, int],
    listeners: dict[int, list[tuple[int, str]]],
    own_pids: set[int],
) -> list[Finding]:
    """Ports the hub needs that another program holds (only meaningful while the hub is down)."""
    if hub_up:
        return []
    findings = []
    for role, port in ports.items():
        others = [(pid, name) for pid, name in listeners.get(port, []) if pid not in own_pids]
        if others:
            who = ", ".join(f"{name} (pid {pid})" for pid, name in others)
            findings.append(
                Finding(
                    f"port {port} ({role}) is in use by {who}: the hub cannot start",
                    f"stop that program (kill {others[0][0]}), or move the hub to another "
                    "port in /etc/jupyterhub/jupyterhub_config.d/ "
                    "(c.JupyterHub.bind_url, c.JupyterHub.hub_port, "
                    "c.ConfigurableHTTPProxy.api_url)",
                )
            )
    return findings


def hub_findings(
    hub_up: bool, proxy_up: bool, settings: HubSettings, systemd: bool
) -> list[Finding]:
    """Does the hub answer, and does the proxy route to it?"""
    if not hub_up:
        start = (
            "systemctl start jupyterhub; if it stops again: journalctl -u jupyterhub -n 50"
            if systemd
            else f"jupyterhub -f {settings.config_file} (from the state directory "
            f"{settings.state_dir}), and read its log"
        )
        return [Finding(f"the hub does not answer at {settings.hub_api_url}", f"start it: {start}")]
    if not proxy_up:
        return [
            Finding(
                f"the hub runs but its public address {settings.public_url} does not answer: "
                "the proxy is down or not routing",
                "restart the hub (systemctl restart jupyterhub); it restarts the proxy",
            )
        ]
    return []


def pam_findings(service: str, pam_dir: str, exists: bool) -> list[Finding]:
    if exists:
        return []
    return [
        Finding(
            f"the PAM service {pam_dir}/{service} is missing: PAM falls back to its "
            "'other' service and logins fail",
            "run `pdal-hub install` (it installs the pdal-hub PAM service), or set "
            "c.PdalAuthenticator.service to an existing service",
        )
    ]


# -- facts from the machine --------------------------------------------------------


def path_facts(path: str) -> PathFacts | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return PathFacts(
        path, st.st_uid, st.st_mode, stat.S_ISLNK(st.st_mode), stat.S_ISDIR(st.st_mode)
    )


def ancestors(path: str) -> list[PathFacts]:
    """The directories from / down to `path`, as written and with links resolved."""
    seen, facts = set(), []
    for start in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
        for directory in reversed(start.parents):
            f = path_facts(str(directory))
            if f is not None and f.path not in seen:
                seen.add(f.path)
                facts.append(f)
    return facts


def tree_facts(root: str, depth: int) -> list[PathFacts]:
    """`root` and the entries below it, `depth` levels deep (symlinks not followed)."""
    top = path_facts(root)
    if top is None:
        return []
    facts, level = [top], [root]
    for _ in range(depth):
        below = []
        for directory in level:
            try:
                names = sorted(os.listdir(directory))
            except (NotADirectoryError, PermissionError, FileNotFoundError):
                continue
            for name in names:
                f = path_facts(os.path.join(directory, name))
                if f:
                    facts.append(f)
                    if f.is_dir and not f.is_link:
                        below.append(f.path)
        level = below
    return facts


PROBE = r"""
import json, os, shutil, sys
venv_bin = os.path.dirname(sys.argv[1])
out = {"singleuser": os.access(os.path.join(venv_bin, "jupyterhub-singleuser"), os.X_OK)}
path = venv_bin + os.pathsep + sys.argv[2]
try:
    from jupyter_client.kernelspec import KernelSpecManager
    specs = KernelSpecManager().get_all_specs()
    out["kernels_error"] = ""
except Exception as e:
    specs, out["kernels_error"] = {}, f"{type(e).__name__}: {e}"
pythons = {"python", "python3", "python%d.%d" % sys.version_info[:2]}
kernels = {}
for name, spec in specs.items():
    argv0 = (spec.get("spec", {}).get("argv") or [""])[0]
    program = sys.executable if argv0 in pythons else shutil.which(argv0, path=path)
    kernels[name] = {"argv0": argv0, "dir": spec.get("resource_dir", ""),
                     "runnable": bool(program) and os.access(program, os.X_OK)}
out["kernels"] = kernels
print(json.dumps(out))
"""


def probe_as_student(venv: str, user: str = STUDENT_STANDIN) -> tuple[bool, str, dict]:
    """Run the venv's python as an unprivileged account; returns (ran, error, findings data)."""
    python = os.path.join(venv, "bin", "python")
    result = run(["runuser", "-u", user, "--", python, "-c", PROBE, python, UNIT_PATH], cwd="/")
    if result.returncode:
        return (
            False,
            (result.stderr.strip().splitlines() or ["exit " + str(result.returncode)])[-1],
            {},
        )
    return True, "", json.loads(result.stdout.strip().splitlines()[-1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _fd_target(path: str) -> str:
    """What a /proc/PID/fd entry points to; empty when it closed meanwhile."""
    try:
        return os.readlink(path)
    except OSError:
        return ""


def listening_processes(ports: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """Which processes listen on each of `ports` (TCP, IPv4 and IPv6), from /proc."""
    wanted, inodes = set(ports), {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and port in wanted:
                inodes[fields[9]] = port
    found: dict[int, list[tuple[int, str]]] = {}
    if not inodes:
        return found
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for link in map(_fd_target, (f"/proc/{pid}/fd/{fd}" for fd in fds)):
            inode = link[len("socket:[") : -1] if link.startswith("socket:[") else None
            if inode in inodes:
                entry = (int(pid), comm)
                if entry not in found.setdefault(inodes[inode], []):
                    found[inodes[inode]].append(entry)
    return found


def proxy_pid(pid_file: str) -> set[int]:
    try:
        return {int(Path(pid_file).read_text().strip())}
    except (OSError, ValueError):
        return set()


def systemd_is_running() -> bool:
    return os.path.isdir("/run/systemd/system")


def check_proxy(settings: HubSettings, venv: str) -> Check:
    command = settings.proxy_command or ["configurable-http-proxy"]
    resolved = shutil.which(command[0], path=f"{venv}/bin:{UNIT_PATH}")
    runs, error = False, ""
    if resolved:
        result = run([resolved, "--version"])
        runs = result.returncode == 0
        error = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
    return Check("proxy", command[0], proxy_findings(command, resolved, runs, error))


def config_fix(config_file: Path) -> str:
    if not config_file.exists():
        return "run `pdal-hub install`, or name the hub's config with --config"
    return (
        "fix the file named in the error (usually a drop-in in "
        f"{config_file.parent}/jupyterhub_config.d/), then run doctor again"
    )


def run_doctor(
    config_file: Path,
    venv: str,
    pam_dir: str,
    expected_kernels: Iterable[str],
    probe_user: str = STUDENT_STANDIN,
) -> list[Check]:
    """Every check, in the order an admin would fix things."""
    checks = []
    try:
        settings = load_settings(config_file, python=os.path.join(venv, "bin", "python"))
        config_tree = tree_facts(str(config_file.parent), depth=2)
        checks.append(
            Check(
                "config",
                f"{config_file} loads and only root can change it",
                writable_by_others_findings("the hub config", config_tree),
            )
        )
    except HubError as e:
        settings = None
        checks.append(
            Check(
                "config",
                str(config_file),
                [Finding(str(e), config_fix(config_file))],
            )
        )

    if lookup_account(probe_user) is None:
        python_runs, probe = False, {}
        venv_check = Check(
            "venv",
            str(venv),
            [
                Finding(
                    f"there is no account {probe_user!r} to check what students can execute",
                    "name an account without privileges: pdal-hub doctor --probe-user NAME",
                )
            ],
        )
    else:
        python_runs, error, probe = probe_as_student(venv, probe_user)
        blocked = [] if python_runs else blocking_directories(ancestors(f"{venv}/bin/python"))
        venv_check = Check(
            "venv",
            f"{venv} can be executed by students (as {probe_user})",
            venv_findings(venv, python_runs, error, probe.get("singleuser", False), blocked),
        )
    checks.append(venv_check)
    venv_tree = [
        path_facts(p) for p in (venv, f"{venv}/bin", os.path.realpath(f"{venv}/bin/python"))
    ]
    checks[-1].findings += writable_by_others_findings("the hub venv", [f for f in venv_tree if f])

    kernels = Check("kernels", f"kernels {', '.join(expected_kernels)} installed and runnable")
    if python_runs:
        kernels.findings = kernel_findings(
            probe.get("kernels", {}), expected_kernels, probe.get("kernels_error", "")
        )
    else:
        kernels.skipped = "the venv check failed"
    checks.append(kernels)

    if settings is None:
        for name in ("proxy", "libs-root", "state", "pam", "hub", "ports"):
            checks.append(Check(name, "", skipped="the config does not load"))
        return checks

    checks.append(check_proxy(settings, venv))

    libs = tree_facts(settings.libs_root, depth=1)
    checks.append(
        Check(
            "libs-root",
            f"{settings.libs_root} and its folders are writable by root only",
            missing_path_findings(
                "the shared-library root", settings.libs_root, bool(libs), "run `pdal-hub install`"
            )
            + writable_by_others_findings("the shared-library folder", libs),
        )
    )

    state_dir = path_facts(settings.state_dir)
    # the proxy's pid file is no secret; everything else there is
    state_files = [
        f
        for f in tree_facts(settings.state_dir, depth=1)[1:]
        if not f.is_dir and not f.is_link and f.path != settings.pid_file
    ]
    checks.append(
        Check(
            "state",
            f"{settings.state_dir} and its files are root-only",
            state_findings(state_dir, state_files),
        )
    )

    pam_file = os.path.join(pam_dir, settings.pam_service)
    checks.append(
        Check(
            "pam",
            f"PAM service {pam_file}",
            pam_findings(settings.pam_service, pam_dir, os.path.isfile(pam_file)),
        )
    )

    hub_up = http_ok(settings.hub_api_url + "/")
    proxy_up = hub_up and http_ok(settings.public_url + "/hub/api/")
    checks.append(
        Check(
            "hub",
            f"the hub answers at {settings.hub_api_url} and {settings.public_url}",
            hub_findings(hub_up, proxy_up, settings, systemd_is_running()),
        )
    )
    ports = {
        "public": settings.bind_port,
        "hub": settings.hub_port,
        "proxy API": settings.proxy_api_port,
    }
    checks.append(
        Check(
            "ports",
            "ports " + ", ".join(f"{p} ({role})" for role, p in ports.items()) + " are free",
            port_findings(
                hub_up, ports, listening_processes(ports.values()), proxy_pid(settings.pid_file)
            ),
            skipped="in use by the running hub" if hub_up else "",
        )
    )
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        if check.skipped and check.ok:
            what = " ".join(filter(None, [check.checked, f"({check.skipped})"]))
            lines.append(f"skip  {check.name:<10} {what}")
        elif check.ok:
            lines.append(f"ok    {check.name:<10} {check.checked}")
        for finding in check.findings:
            lines.append(f"FAIL  {check.name:<10} {finding.problem}")
            lines.append(f"      {'':<10} fix: {finding.fix}")
    problems = sum(len(c.findings) for c in checks)
    lines.append(
        "\nNo problems found."
        if not problems
        else f"\n{problems} problem(s) found: fix them in order."
    )
    return "\n".join(lines)


def cmd_doctor(args) -> int:
    if os.geteuid() != 0:
        print("pdal-hub doctor must run as root (try: sudo pdal-hub doctor).", file=sys.stderr)
        return 2
    kernels = [k for k in args.kernels.split(",") if k]
    checks = run_doctor(Path(args.config), args.venv, args.pam_dir, kernels, args.probe_user)
    if args.json:
        print(
            json.dumps(
                {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}, indent=2
            )
        )
    else:
        print(render(checks))
    return 0 if all(c.ok for c in checks) else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the installation and say how to fix each problem",
        description="Check the hub's installation, running or stopped: venv usable by "
        "students, proxy, kernels, shared-library permissions, config, ports, state "
        "files, PAM service, hub answering. Each problem is named with its fix. "
        "Exit status: 0 no problems, 1 problems found, 2 cannot run (not root).",
    )
    parser.add_argument(
        "--config",
        default="/etc/jupyterhub/jupyterhub_config.py",
        help="the hub's config file (default: %(default)s)",
    )
    parser.add_argument(
        "--venv", default=sys.prefix, help="the hub's venv (default: this one, %(default)s)"
    )
    parser.add_argument(
        "--pam-dir", default="/etc/pam.d", help="where PAM services live (default: %(default)s)"
    )
    parser.add_argument(
        "--kernels",
        default=",".join(DEFAULT_KERNELS),
        help="kernels students must have, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--probe-user",
        default=STUDENT_STANDIN,
        help="an account without privileges that stands in for a student when checking "
        "what students can execute (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=cmd_doctor)
