"""The `pdal-hub` admin command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from . import __version__
from .install import InstallError, InstallPaths, install_all, systemd_is_running
from .resources import DATA_FILES, data_path

#: Modules that add subcommands: each has ``register(subparsers)``, and every
#: subcommand it adds sets ``func(args) -> exit code`` as its default.
SUBCOMMAND_MODULES: list[str] = ["pdal_hub.libs_cli"]


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
    try:
        actions, password = install_all(paths, args.admin, args.create_admin, args.dry_run)
    except InstallError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    prefix = "would: " if args.dry_run else ""
    for line in actions or ["nothing to change: already installed"]:
        print(f"{prefix}{line}")
    if password:
        print(f"\nAdmin {args.admin!r} has the password: {password}\n(shown only once)")
    hub_cmd = [str(paths.venv / "bin" / "jupyterhub"), "-f", str(paths.config_file)]
    if args.dry_run:
        return 0
    if systemd_is_running():
        if args.start:
            os.execvp("systemctl", ["systemctl", "restart", "jupyterhub.service"])
        print("Start the hub with: systemctl restart jupyterhub")
        return 0
    print("systemd is not running here; start the hub in the foreground with:")
    print("  " + " ".join(hub_cmd))
    if args.start:
        print(f"Starting it now; log in at http://{os.uname().nodename}:8000/ as {args.admin}.")
        sys.stdout.flush()
        os.chdir(paths.state_dir)
        os.execv(hub_cmd[0], hub_cmd)
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    print(data_path(args.kind))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdal-hub", description="Set up and run the lab's JupyterHub (pdal-hub)."
    )
    parser.add_argument("--version", action="version", version=f"pdal-hub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    install = sub.add_parser(
        "install",
        help="set up this machine: libs root, proxy, config, PAM service, unit, admin",
        description="Do the lab manual's setup. Safe to run again: edited files are "
        "backed up before they are replaced.",
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
        help="start the hub afterwards (systemd, or in the foreground without systemd)",
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
