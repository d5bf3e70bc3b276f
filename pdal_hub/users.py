"""`pdal-hub users`: add, remove, list, reset passwords, import class rosters.

Linux accounts are made with useradd and passwords set with chpasswd (never on a
command line); the hub's allowlist and groups change through its REST API with
the CLI service's token. Every step first looks at what exists, so running the
same command or roster again changes nothing.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import pwd
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .accounts import LINUX_USERNAME_PATTERN, account_refusal, lookup_account
from .hubapi import HubAPI, HubError, HubSettings, load_settings, run
from .install import generate_password
from .system import create_private_file

#: Accepted roster column names (lower case, spaces/underscores/dashes ignored) per field.
COLUMN_ALIASES = {
    "username": {"username", "user", "login", "account"},
    "full_name": {"fullname", "name", "realname", "displayname"},
    "password": {"password", "initialpassword"},
    "group": {"group", "course", "class"},
}
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_ARCHIVE_DIR = "/var/backups/pdal-hub"


@dataclass
class RosterRow:
    """One student from a roster (or from `users add`)."""

    line: int
    username: str
    full_name: str = ""
    password: str = ""
    group: str = ""


@dataclass
class RowResult:
    """What happened to one roster row."""

    line: int
    username: str
    status: str  # "changed", "unchanged", "skipped", "failed"
    actions: list[str] = field(default_factory=list)
    reason: str = ""
    password: str = ""


# -- pure decisions ----------------------------------------------------------------


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s_\-]", "", (name or "").strip().lower())


def roster_columns(header: list[str]) -> tuple[dict[str, int], str | None]:
    """Map each known field to its column index; an error when there is no username column."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        for fieldname, aliases in COLUMN_ALIASES.items():
            if _normalise_header(name) in aliases and fieldname not in columns:
                columns[fieldname] = index
    if "username" not in columns:
        return columns, (
            "the roster has no username column: its first line must name the columns, "
            "e.g. username,full name,password,group"
        )
    return columns, None


def roster_delimiter(header_line: str) -> str:
    """The roster's field separator: ',' or, as spreadsheets export in some locales, ';' or tab."""
    return max([",", ";", "\t"], key=header_line.count) if header_line else ","


def parse_roster(text: str) -> tuple[list[RosterRow], list[RowResult], str | None]:
    """Rows of a CSV roster, rows that cannot be read, and an error for the whole file."""
    delimiter = roster_delimiter(text.split("\n", 1)[0])
    lines = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not lines:
        return [], [], "the roster is empty"
    columns, error = roster_columns(lines[0])
    if error:
        return [], [], error
    rows, bad = [], []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(lines[0]):
            bad.append(
                RowResult(
                    number,
                    (cells + [""])[columns["username"]].strip(),
                    "skipped",
                    reason=f"malformed row: {len(cells)} fields, the header has "
                    f"{len(lines[0])} (a comma inside a name needs quotes)",
                )
            )
            continue
        values = {f: (cells[i].strip() if i < len(cells) else "") for f, i in columns.items()}
        rows.append(RosterRow(number, **values))
    return rows, bad, None


def row_refusal(
    row: RosterRow, account: pwd.struct_passwd | None, min_uid: int, reserved: frozenset[str]
) -> str | None:
    """Why this row must be skipped, or None. `account` is None for a missing account."""
    name = row.username
    if not name:
        return "malformed row: the username is empty"
    if name != name.lower() and re.match(LINUX_USERNAME_PATTERN, name.lower()):
        return f"invalid username {name!r}: Linux usernames are lower case ({name.lower()!r})"
    if not re.match(LINUX_USERNAME_PATTERN, name):
        return (
            f"invalid username {name!r}: use lower-case letters, digits, '-' and '_', "
            "starting with a letter, at most 32 characters"
        )
    refusal = account_refusal(name, account, min_uid, reserved)
    if refusal:
        return refusal
    if any(ch in row.full_name for ch in ":\n"):
        return "invalid full name: it must not contain ':' or a line break"
    if row.password and (any(ch in row.password for ch in ":\n\r") or len(row.password) < 8):
        return "invalid initial password: at least 8 characters, no ':' or line break"
    if row.group and not re.match(GROUP_PATTERN, row.group):
        return (
            f"invalid group {row.group!r}: use letters, digits, '.', '-' and '_' "
            "(at most 64 characters)"
        )
    return None


def first_occurrences(rows: list[RosterRow]) -> tuple[list[RosterRow], list[RowResult]]:
    """Rows with a username seen before are duplicates: reported, and only the first kept."""
    seen: dict[str, int] = {}
    kept, duplicates = [], []
    for row in rows:
        if row.username and row.username in seen:
            duplicates.append(
                RowResult(
                    row.line,
                    row.username,
                    "skipped",
                    reason=f"duplicate of line {seen[row.username]}",
                )
            )
            continue
        seen.setdefault(row.username, row.line)
        kept.append(row)
    return kept, duplicates


# -- OS glue -----------------------------------------------------------------------


class UserError(Exception):
    """A user operation failed; the message says what to do."""


def create_account(row: RosterRow, password: str) -> None:
    """useradd with a home and bash, then the initial password; undone if the password fails."""
    cmd = ["useradd", "--create-home", "--shell", "/bin/bash"]
    if row.full_name:
        cmd += ["--comment", row.full_name]
    result = run(cmd + ["--", row.username])
    if result.returncode:
        raise UserError(f"useradd failed: {result.stderr.strip()}")
    try:
        set_password(row.username, password)
    except UserError:
        run(["userdel", "--remove", row.username])
        raise


def set_password(username: str, password: str) -> None:
    """chpasswd, with the password on its standard input."""
    result = run(["chpasswd"], input=f"{username}:{password}\n")
    if result.returncode:
        raise UserError(f"chpasswd failed for {username}: {result.stderr.strip()}")


def write_private_file(path: Path, text: str) -> None:
    """Create `path` root-only (0600) in a root-only directory; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    create_private_file(path, text)


def passwords_csv(results: list[RowResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "initial password"])
    for r in results:
        if r.password:
            writer.writerow([r.username, r.password])
    return out.getvalue()


class UserManager:
    """Apply roster rows to Linux accounts and the hub."""

    def __init__(self, api: HubAPI, settings: HubSettings, dry_run: bool = False) -> None:
        self.api = api
        self.settings = settings
        self.dry_run = dry_run
        self.reserved = frozenset(settings.reserved_users)

    def refusal(self, row: RosterRow) -> str | None:
        account = lookup_account(row.username) if row.username else None
        return row_refusal(row, account, self.settings.min_uid, self.reserved)

    def apply(self, row: RosterRow, create_accounts: bool) -> RowResult:
        """Make the row true: account, initial password, hub allowlist, group."""
        result = RowResult(row.line, row.username, "unchanged")
        refusal = self.refusal(row)
        if refusal:
            result.status, result.reason = "skipped", refusal
            return result
        try:
            if lookup_account(row.username) is None:
                if not create_accounts:
                    result.status = "skipped"
                    result.reason = (
                        f"there is no Linux account {row.username!r}: create it "
                        f"(adduser {row.username}) or run again with --create-accounts"
                    )
                    return result
                password = row.password or generate_password()
                if not self.dry_run:
                    create_account(row, password)
                result.actions.append("created Linux account")
                result.password = password
            if self.api.user(row.username) is None:
                if not self.dry_run:
                    self.api.add_user(row.username)
                result.actions.append("added to the hub")
            if row.group:
                group = self.api.group(row.group)
                if group is None:
                    if not self.dry_run:
                        self.api.add_group(row.group)
                    result.actions.append(f"created hub group {row.group}")
                if group is None or row.username not in group.get("users", []):
                    if not self.dry_run:
                        self.api.add_group_members(row.group, [row.username])
                    result.actions.append(f"added to group {row.group}")
        except (UserError, HubError) as e:
            result.status, result.reason = "failed", str(e)
            return result
        if result.actions:
            result.status = "changed"
        return result


# -- commands ----------------------------------------------------------------------


def _connect(args) -> tuple[HubSettings, HubAPI]:
    """The hub's settings and API client; HubError unless the hub answers."""
    settings = load_settings(Path(args.config))
    api = HubAPI.from_settings(settings)
    if not api.is_up():
        raise HubError(
            f"The hub does not answer at {settings.hub_api_url}: start it "
            "(systemctl start jupyterhub), or find out why with `pdal-hub doctor`. "
            "Nothing changed."
        )
    return settings, api


def _require_root(what: str) -> bool:
    if os.geteuid() != 0:
        print(f"pdal-hub users {what} must run as root (sudo).", file=sys.stderr)
        return False
    return True


def print_results(results: list[RowResult], dry_run: bool) -> None:
    prefix = "would: " if dry_run else ""
    for r in sorted(results, key=lambda r: r.line):
        where = f"line {r.line:<4}" if r.line else ""
        if r.status in ("skipped", "failed"):
            print(f"{where} {r.username or '-':<20} {r.status.upper()}: {r.reason}")
        elif r.actions:
            print(f"{where} {r.username:<20} {prefix}{', '.join(r.actions)}")
        else:
            print(f"{where} {r.username:<20} unchanged")


def summary(results: list[RowResult]) -> dict[str, int]:
    counts = {"changed": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    for r in results:
        counts[r.status] += 1
    return counts


def save_passwords(
    results: list[RowResult], path: Path | None, settings: HubSettings
) -> Path | None:
    if not any(r.password for r in results):
        return None
    if path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(settings.state_dir) / "initial-passwords" / f"passwords-{stamp}.csv"
    write_private_file(path, passwords_csv(results))
    return path


def cmd_import(args) -> int:
    if not _require_root("import"):
        return 2
    try:
        text = Path(args.roster).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: cannot read the roster {args.roster}: {e}", file=sys.stderr)
        return 2
    rows, bad, error = parse_roster(text)
    if error:
        print(f"error: {args.roster}: {error}", file=sys.stderr)
        return 2
    if args.passwords_file and Path(args.passwords_file).exists():
        print(f"error: {args.passwords_file} exists; name a new file.", file=sys.stderr)
        return 2
    try:
        settings, api = _connect(args)
        manager = UserManager(api, settings, dry_run=args.dry_run)
        rows, duplicates = first_occurrences(rows)
        results = bad + duplicates
        for row in rows:
            results.append(manager.apply(row, args.create_accounts))
            if not args.json:
                print_results(results[-1:], args.dry_run)
                sys.stdout.flush()
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    passwords = (
        None
        if args.dry_run
        else save_passwords(
            results, Path(args.passwords_file) if args.passwords_file else None, settings
        )
    )
    counts = summary(results)
    if args.json:
        rows_out = [
            dict(asdict(r), password=bool(r.password))
            for r in sorted(results, key=lambda r: r.line)
        ]
        print(
            json.dumps(
                {
                    "rows": rows_out,
                    "summary": counts,
                    "passwords_file": str(passwords) if passwords else None,
                },
                indent=2,
            )
        )
    else:
        print_results(bad + duplicates, args.dry_run)
        print(", ".join(f"{n} {k}" for k, n in counts.items()))
        if passwords:
            print(f"Initial passwords for the new accounts are in {passwords} (root only, 0600).")
    return 1 if counts["skipped"] or counts["failed"] else 0


def read_password_from_stdin() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Again: "):
            raise UserError("the two passwords differ; nothing changed")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_add(args) -> int:
    if not _require_root("add"):
        return 2
    try:
        password = read_password_from_stdin() if args.password_stdin else ""
        settings, api = _connect(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    row = RosterRow(0, args.username, args.full_name or "", password, args.group or "")
    result = UserManager(api, settings).apply(row, args.create_account)
    print_results([result], False)
    if password and not result.password and result.status != "skipped":
        print(
            f"{row.username} already had a Linux account: its password is unchanged "
            "(reset it with: pdal-hub users passwd)"
        )
    if result.password and not password:
        print(f"Password of {row.username}: {result.password}   (shown only once)")
    return 1 if result.status in ("skipped", "failed") else 0


def archive_home(username: str, home: str, archive_dir: Path) -> Path:
    """tar the home folder into a root-only archive (symlinks stored as links, not followed)."""
    archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(archive_dir, 0o700)
    archive = archive_dir / f"{username}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"
    write_private_file(archive, "")
    home_path = Path(home)
    result = run(
        [
            "tar",
            "--create",
            "--gzip",
            "--file",
            str(archive),
            "--directory",
            str(home_path.parent),
            "--",
            home_path.name,
        ]
    )
    if result.returncode:
        archive.unlink(missing_ok=True)
        raise UserError(f"archiving {home} failed, nothing deleted: {result.stderr.strip()}")
    return archive


def cmd_remove(args) -> int:
    if not _require_root("remove"):
        return 2
    if args.delete_account and not (args.archive or args.keep_files):
        print(
            "error: --delete-account needs --archive (tar the home folder first, then "
            "delete it) or --keep-files (leave the home folder in place). Nothing changed.",
            file=sys.stderr,
        )
        return 2
    try:
        settings, api = _connect(args)
        account = lookup_account(args.username)
        refusal = account_refusal(
            args.username, account, settings.min_uid, frozenset(settings.reserved_users)
        )
        if refusal and args.delete_account:
            print(f"error: {refusal} Nothing changed.", file=sys.stderr)
            return 2
        model = api.user(args.username)
        if model is not None:
            api.delete_user(args.username)
            stopped = " and stopped their server" if model.get("servers") else ""
            print(f"{args.username}: removed from the hub{stopped}; they can no longer log in")
        else:
            print(f"{args.username}: not in the hub")
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    if account is None:
        print(f"{args.username}: there is no Linux account")
        return 0
    if not args.delete_account:
        print(
            f"{args.username}: Linux account and files in {account.pw_dir} kept "
            "(--delete-account with --archive or --keep-files removes the account)"
        )
        return 0
    try:
        if args.archive:
            archive = archive_home(args.username, account.pw_dir, Path(args.archive_dir))
            print(f"{args.username}: files archived to {archive} (root only)")
        cmd = ["userdel"] + (["--remove"] if args.archive else []) + ["--", args.username]
        result = run(cmd)
        if result.returncode:
            raise UserError(
                f"userdel failed: {result.stderr.strip()} (if processes of the user still "
                f"run, stop them: pkill -u {args.username}; then run this again)"
            )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    kept = "" if args.archive else f"; files kept in {account.pw_dir}"
    print(f"{args.username}: Linux account deleted{kept}")
    return 0


def cmd_passwd(args) -> int:
    if not _require_root("passwd"):
        return 2
    account = lookup_account(args.username)
    if account is None:
        print(f"error: there is no Linux account {args.username!r}.", file=sys.stderr)
        return 2
    try:
        settings = load_settings(Path(args.config))
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    refusal = account_refusal(
        args.username, account, settings.min_uid, frozenset(settings.reserved_users)
    )
    if refusal:
        print(f"error: {refusal} Its password is not managed by pdal-hub.", file=sys.stderr)
        return 2
    try:
        password = read_password_from_stdin() if args.stdin else generate_password()
        if len(password) < 8 or any(ch in password for ch in ":\n\r"):
            raise UserError("the password needs at least 8 characters and no ':'; nothing changed")
        set_password(args.username, password)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.stdin:
        print(f"Password of {args.username} changed.")
    else:
        print(f"New password of {args.username}: {password}   (shown only once)")
    return 0


def cmd_list(args) -> int:
    if not _require_root("list"):
        return 2
    try:
        _, api = _connect(args)
        users = api.users()
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    rows = []
    for user in sorted(users, key=lambda u: u["name"]):
        server = (user.get("servers") or {}).get("", {})
        rows.append(
            {
                "name": user["name"],
                "admin": user.get("admin", False),
                "groups": sorted(user.get("groups", [])),
                "linux_account": lookup_account(user["name"]) is not None,
                "server": (
                    "running" if server.get("ready") else ("starting" if server else "stopped")
                ),
                "last_activity": user.get("last_activity"),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'USER':<20} {'ADMIN':<6} {'SERVER':<9} {'ACCOUNT':<8} {'GROUPS':<20} LAST ACTIVITY")
    for r in rows:
        print(
            f"{r['name']:<20} {'yes' if r['admin'] else '':<6} {r['server']:<9} "
            f"{'yes' if r['linux_account'] else 'MISSING':<8} {','.join(r['groups']):<20} "
            f"{r['last_activity'] or '-'}"
        )
    return 0


def _config_option(parser) -> None:
    parser.add_argument(
        "--config",
        default="/etc/jupyterhub/jupyterhub_config.py",
        help="the hub's config file, which tells the hub's address and token "
        "(default: %(default)s)",
    )


def register(subparsers) -> None:
    users = subparsers.add_parser(
        "users",
        help="add, remove, list students; reset passwords; import a class roster",
        description="Manage who may use the hub: their Linux accounts and the hub's "
        "allowlist and groups (through the hub's REST API, so the hub must run). "
        "Exit status: 0 done, 1 some rows or steps failed (see the report), 2 wrong "
        "usage or not root, 3 the hub cannot be reached.",
    )
    sub = users.add_subparsers(dest="users_command", required=True)

    imp = sub.add_parser(
        "import",
        help="import a class roster (CSV)",
        description="Import a CSV roster whose first line names the columns: username "
        "(required), and optionally full name, password (initial password), group "
        "(or course). Existing accounts keep their passwords; running the same roster "
        "again changes nothing. Bad rows are reported and skipped.",
    )
    imp.add_argument("roster", help="the CSV file")
    imp.add_argument(
        "--create-accounts",
        action="store_true",
        help="create missing Linux accounts, with the roster's password or a generated one",
    )
    imp.add_argument(
        "--passwords-file",
        help="where to write new accounts' initial passwords (root only, 0600; default: "
        "<state dir>/initial-passwords/passwords-<time>.csv)",
    )
    imp.add_argument("--dry-run", action="store_true", help="only show what would change")
    imp.add_argument("--json", action="store_true", help="print the per-row report as JSON")
    imp.set_defaults(func=cmd_import)

    add = sub.add_parser("add", help="let one person use the hub")
    add.add_argument("username")
    add.add_argument(
        "--create-account",
        action="store_true",
        help="create the Linux account if missing (password generated and shown once)",
    )
    add.add_argument("--full-name", help="full name for a new account")
    add.add_argument("--group", help="hub group (course) to put the user in")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the new account's password from standard input instead of generating one",
    )
    add.set_defaults(func=cmd_add)

    remove = sub.add_parser(
        "remove",
        help="stop someone using the hub; optionally delete their account",
        description="Remove the user from the hub (their server stops, they can no "
        "longer log in). Their Linux account and files are kept unless you ask for "
        "--delete-account, which needs --archive or --keep-files: files are never "
        "deleted without an archive.",
    )
    remove.add_argument("username")
    remove.add_argument(
        "--delete-account", action="store_true", help="also delete the Linux account"
    )
    keep = remove.add_mutually_exclusive_group()
    keep.add_argument(
        "--archive",
        action="store_true",
        help="tar the home folder into --archive-dir, then delete it",
    )
    keep.add_argument("--keep-files", action="store_true", help="leave the home folder in place")
    remove.add_argument(
        "--archive-dir",
        default=DEFAULT_ARCHIVE_DIR,
        help="root-only folder for archives (default: %(default)s)",
    )
    remove.set_defaults(func=cmd_remove)

    passwd = sub.add_parser(
        "passwd",
        help="reset a student's password",
        description="Set a new password: generated and shown once, or read from "
        "standard input with --stdin (never from the command line).",
    )
    passwd.add_argument("username")
    passwd.add_argument(
        "--stdin", action="store_true", help="read the password from standard input"
    )
    passwd.set_defaults(func=cmd_passwd)

    listing = sub.add_parser("list", help="list the hub's users")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)

    for parser in (imp, add, remove, passwd, listing):
        _config_option(parser)
