"""Prepare a folder inside a student's home, as root, without trusting the home.

The student owns their home and can swap any entry in it for a symlink, a file
or another directory at any moment. Everything here therefore works on file
descriptors opened with O_NOFOLLOW relative to the home's own descriptor: no
path is resolved twice, no link is followed, and only a directory that is a
direct entry of the home is ever changed.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

OPEN_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeHomePath(Exception):
    """A path in a student's home is not what pdal-hub can safely use."""


@dataclass(frozen=True)
class PreparedDir:
    """Outcome of `ensure_private_dir`."""

    path: str
    created: bool


def _open_dir(name: str, dir_fd: int | None, shown_as: str) -> int:
    try:
        return os.open(name, OPEN_DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise UnsafeHomePath(f"{shown_as} does not exist.") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeHomePath(
                f"{shown_as} is a symbolic link or not a directory, so pdal-hub will "
                f"not use it. Move it away (for example: mv {shown_as} "
                f"{shown_as}.old) and start the server again."
            ) from None
        raise


def ensure_private_dir(home: str, name: str, uid: int, gid: int, mode: int) -> PreparedDir:
    """Make sure `home`/`name` is a real directory owned by `uid`.

    Creates it with `mode`, owned by `uid`:`gid`, if it does not exist. An
    existing directory owned by `uid` is left exactly as the student keeps it.
    Anything else (a symlink, a file, a directory owned by someone else, a home
    not owned by `uid`) raises `UnsafeHomePath` and nothing is changed.
    """
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"folder name must be a single path component, not {name!r}")
    path = os.path.join(home, name)
    home_fd = _open_dir(home, None, home)
    try:
        home_stat = os.fstat(home_fd)
        if home_stat.st_uid != uid:
            raise UnsafeHomePath(
                f"Home directory {home} is owned by uid {home_stat.st_uid}, not by "
                f"uid {uid}; pdal-hub will not create {name} in it. "
                f"Fix it with: chown {uid}:{gid} {home}"
            )
        try:
            os.mkdir(name, mode=0o700, dir_fd=home_fd)
            created = True
        except FileExistsError:
            created = False
        dir_fd = _open_dir(name, home_fd, path)
        try:
            _claim_or_check(dir_fd, path, uid, gid, mode, created)
        finally:
            os.close(dir_fd)
    finally:
        os.close(home_fd)
    return PreparedDir(path=path, created=created)


def _claim_or_check(dir_fd: int, path: str, uid: int, gid: int, mode: int, created: bool) -> None:
    st = os.fstat(dir_fd)
    if st.st_uid == uid:
        return
    # Only the empty, root-owned directory this call just made is handed over:
    # anything else appeared there by someone else's hand.
    ours = created and st.st_uid == os.geteuid() and not os.listdir(dir_fd)
    if not ours:
        raise UnsafeHomePath(
            f"{path} is owned by uid {st.st_uid}, not by uid {uid}, so pdal-hub will "
            "not touch it. An admin should check what it is and move it away."
        )
    os.fchown(dir_fd, uid, gid)
    os.fchmod(dir_fd, stat.S_IMODE(mode))
