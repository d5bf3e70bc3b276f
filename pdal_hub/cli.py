"""The `pdal-hub` admin command."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .install import (
    InstallError,
    InstallPaths,
    existing_backups,
    install_all,
    start_or_restart_unit,
    systemd_manages,
)
from .resources import DATA_FILES, data_path

#: Modules that add subcommands: each has ``register(subparsers)``, and every
#: subcommand it adds sets ``func(args) -> exit code`` as its default.
SUBCOMMAND_MODULES: list[str] = [
    "pdal_hub.doctor",
    "pdal_hub.users",
    "pdal_hub.status",
    "pdal_hub.prestart",
    "pdal_hub.libs_cli",
]


def _paths_from_args(args: argparse.Namespace) -> InstallPaths:
    defaults = InstallPaths()
    return InstallPaths(
        venv=Path(args.venv or defaults.venv),
        config_dir=Path(args.config_dir or defaults.config_dir),
        libs_root=Path(args.libs_root or defaults.libs_root),
        state_dir=Path(args.state_dir or defaults.state_dir),
        unit_dir=Path(args.unit_dir or defaults.unit_dir),
        pam_dir=Path(args.pam_dir or defaults.pam_dir),
    )


def cmd_install(args: argparse.Namespace) -> int:
    if os.geteuid() != 0 and not args.dry_run:
        print("pdal-hub install must run as root (try: sudo pdal-hub install).", file=sys.stderr)
        return 2
    paths = _paths_from_args(args)

    def progress(line: str) -> None:
        if line.startswith("  "):
            print(f"  {'would: ' if args.dry_run else ''}{line.strip()}", flush=True)
        else:
            print(f"== {line}", flush=True)

    try:
        actions, password = install_all(
            paths, args.admin, args.create_admin, args.dry_run, progress=progress
        )
        if not actions:
            print("Nothing to change: already installed.")
        backups = existing_backups(paths)
        if backups:
            print("Backups of files you had edited are kept: " + ", ".join(map(str, backups)))
        if password:
            print(f"\nAdmin {args.admin!r} has the password: {password}\n(shown only once)")
        if args.dry_run:
            return 0
        if systemd_manages(paths):
            if args.no_start:
                print("Start the hub with: systemctl start jupyterhub")
            else:
                print(start_or_restart_unit(changed=bool(actions)))
            print(f"Log in at http://{os.uname().nodename}:8000/ as {args.admin}.")
            print("Check the installation with: pdal-hub doctor")
            return 0
    except InstallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    hub_cmd = [str(paths.venv / "bin" / "jupyterhub"), "-f", str(paths.config_file)]
    print("systemd does not manage this hub; start it in the foreground with:")
    print(f"  cd {paths.state_dir} && " + " ".join(hub_cmd))
    print("then check the installation with: pdal-hub doctor")
    if args.start:
        print(f"Starting it now; log in at http://{os.uname().nodename}:8000/ as {args.admin}.")
        sys.stdout.flush()
        os.chdir(paths.state_dir)
        # Started from a script in the background, SIGINT arrives ignored; the hub's
        # services and servers would inherit that and each take 30 s to stop.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execv(hub_cmd[0], hub_cmd)
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    print(data_path(args.kind))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdal-hub",
        description="Set up and run the lab's JupyterHub (pdal-hub). Run as root. "
        "Each command explains itself: pdal-hub COMMAND --help.",
        epilog="First time: pdal-hub install. Something wrong: pdal-hub doctor. "
        "A new class: pdal-hub users import roster.csv --create-accounts.",
    )
    parser.add_argument("--version", action="version", version=f"pdal-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    install = sub.add_parser(
        "install",
        help="set up or repair this machine (safe to run again; --dry-run shows changes)",
        description="Do the lab manual's setup: shared-library root, kernels and "
        "shared libraries, configurable-http-proxy, hub config and drop-in directory, "
        "root-only hub state (cookie secret, database, CLI token), PAM service, systemd "
        "unit (enabled and started when systemd runs), first admin. Safe to run again: "
        "an edited file is backed up before it is replaced, and install says so. "
        "Exit status: 0 done, 1 a step failed (the message says what to do), 2 not root.",
    )
    install.add_argument("--admin", default="pdal", help="the hub's first admin (default: pdal)")
    install.add_argument(
        "--create-admin",
        action="store_true",
        help="create the admin's Linux account with a generated password if it is missing",
    )
    install.add_argument("--dry-run", action="store_true", help="only show what would change")
    install.add_argument(
        "--start",
        action="store_true",
        help="without systemd: run the hub in the foreground afterwards",
    )
    install.add_argument(
        "--no-start",
        action="store_true",
        help="with systemd: enable the unit but do not start or restart the hub",
    )
    for option, meaning in [
        ("--venv", "the hub's venv (default: this one)"),
        ("--config-dir", "default /etc/jupyterhub"),
        ("--libs-root", "default /opt/jupyterhub-libs"),
        ("--state-dir", "default /var/lib/pdal-hub"),
        ("--unit-dir", "default /etc/systemd/system"),
        ("--pam-dir", "default /etc/pam.d"),
    ]:
        install.add_argument(option, help=meaning)
    install.set_defaults(func=cmd_install)

    files = sub.add_parser("files", help="print the path of a file shipped with pdal-hub")
    files.add_argument("kind", choices=sorted(DATA_FILES))
    files.set_defaults(func=cmd_files)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
