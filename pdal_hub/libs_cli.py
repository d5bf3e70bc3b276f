"""`pdal-hub kernels`, `pdal-hub libs` and `pdal-hub stack`: the teaching stack from the CLI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .install import InstallPaths
from .stack import (
    KERNELS,
    StackError,
    TeachingStack,
    add_maven_library,
    add_python_library,
    add_r_library,
    add_r_source_package,
    install_kernels,
    install_stack,
    list_libraries,
)


def _paths(args: argparse.Namespace) -> InstallPaths:
    defaults = InstallPaths()
    return InstallPaths(
        venv=Path(getattr(args, "venv", None) or defaults.venv),
        libs_root=Path(getattr(args, "libs_root", None) or defaults.libs_root),
    )


def _stack(args: argparse.Namespace) -> TeachingStack:
    stack = TeachingStack()
    if getattr(args, "without", None):
        stack.kernels = [k for k in stack.kernels if k not in args.without]
    if getattr(args, "maven_repository", None):
        stack.maven_repository = args.maven_repository
    return stack


def _report(actions: list[str], dry_run: bool) -> None:
    if not actions:
        print("nothing to change: already installed")
    for line in actions:
        print(f"would: {line}" if dry_run else line)


def _as_root(func):
    """Run a changing command only as root; StackError becomes a clear message and exit 1."""

    def command(args: argparse.Namespace) -> int:
        if os.geteuid() != 0 and not getattr(args, "dry_run", False):
            print(f"pdal-hub {args.command} must run as root (try sudo).", file=sys.stderr)
            return 2
        try:
            _report(func(args), getattr(args, "dry_run", False))
        except (StackError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0

    return command


@_as_root
def cmd_kernels_install(args: argparse.Namespace) -> list[str]:
    return install_kernels(_paths(args), _stack(args).kernels, args.dry_run)


@_as_root
def cmd_stack_install(args: argparse.Namespace) -> list[str]:
    return install_stack(_paths(args), args.dry_run, _stack(args))


@_as_root
def cmd_libs_add(args: argparse.Namespace) -> list[str]:
    paths, stack, actions = _paths(args), _stack(args), []
    for name in args.names:
        if args.kind == "python":
            actions += add_python_library(paths, name, args.dry_run)
        elif args.kind == "maven":
            actions += add_maven_library(
                paths, name, stack.maven_repository, stack.download_timeout, args.dry_run
            )
        elif name.endswith(".tar.gz"):
            actions += add_r_source_package(paths, Path(name), args.dry_run)
        else:
            actions += add_r_library(name, args.dry_run)
    return actions


def cmd_libs_list(args: argparse.Namespace) -> int:
    paths = _paths(args)
    for kind, entries in list_libraries(paths).items():
        print(f"{kind} ({paths.libs_root / kind}):")
        for entry in entries or ["(none)"]:
            print(f"  {entry}")
    return 0


def _common(parser: argparse.ArgumentParser, venv: bool = True, libs: bool = True) -> None:
    if venv:
        parser.add_argument("--venv", help="the hub's venv (default: this one)")
    if libs:
        parser.add_argument("--libs-root", help="default /opt/jupyterhub-libs")
        parser.add_argument(
            "--maven-repository",
            help=f"Maven repository URL (default {TeachingStack.maven_repository.default_value})",
        )
    parser.add_argument("--dry-run", action="store_true", help="only show what would change")


def register(subparsers) -> None:
    """Add the kernels, libs and stack subcommands to the `pdal-hub` parser."""
    without = dict(
        action="append",
        choices=[k for k in KERNELS if k != "python"],
        default=[],
        help="leave this kernel out (repeatable), e.g. --without r on a server without R",
    )

    kernels = subparsers.add_parser("kernels", help="install the Python, Java and R kernels")
    kernels_sub = kernels.add_subparsers(dest="action", required=True)
    install = kernels_sub.add_parser(
        "install",
        help="register the kernels for every student",
        description="Register the venv's Python kernel, JJava and IRkernel for all users. "
        "Checks first that a JDK and R with IRkernel are there; changes nothing otherwise.",
    )
    _common(install, libs=False)
    install.add_argument("--without", **without)
    install.set_defaults(func=cmd_kernels_install)

    libs = subparsers.add_parser("libs", help="add or list shared libraries")
    libs_sub = libs.add_subparsers(dest="action", required=True)
    add = libs_sub.add_parser(
        "add",
        help="add a shared library for every student",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
python NAME                   a package from the package index into <libs root>/python
                              (a name, optionally with a version: 'paho-mqtt>=2')
maven GROUP:ARTIFACT:VERSION  a jar from the Maven repository into <libs root>/java,
                              placed only if it matches the repository's checksum
r NAME                        the distribution's r-cran-NAME, for all users (apt-get)
r NAME_VERSION.tar.gz         an R source package into <libs root>/r

A failed add says why and leaves nothing behind.""",
    )
    add.add_argument("kind", choices=["python", "maven", "r"])
    add.add_argument("names", nargs="+", metavar="NAME")
    _common(add)
    add.set_defaults(func=cmd_libs_add)
    listing = libs_sub.add_parser("list", help="show the shared libraries")
    listing.add_argument("--libs-root", help="default /opt/jupyterhub-libs")
    listing.set_defaults(func=cmd_libs_list)

    stack = subparsers.add_parser(
        "stack",
        help="kernels, default shared libraries and JupyterLab classroom settings",
    )
    stack_sub = stack.add_subparsers(dest="action", required=True)
    stack_install = stack_sub.add_parser(
        "install",
        help="install everything the lab's notebooks need (also part of pdal-hub install)",
    )
    _common(stack_install)
    stack_install.add_argument("--without", **without)
    stack_install.set_defaults(func=cmd_stack_install)
