"""Preparing ~/notebooks as root in a folder the student controls."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from pdal_hub.homedir import UnsafeHomePath, ensure_private_dir

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to hand folders to another uid"
)
OTHER_UID, OTHER_GID = 54321, 54321


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    if os.geteuid() == 0:
        os.chown(home, OTHER_UID, OTHER_GID)
    return home


def owner() -> tuple[int, int]:
    return (OTHER_UID, OTHER_GID) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def test_creates_private_folder_owned_by_student(home):
    uid, gid = owner()
    prepared = ensure_private_dir(str(home), "notebooks", uid, gid, 0o700)
    st = (home / "notebooks").lstat()
    assert prepared.created and prepared.path == str(home / "notebooks")
    assert stat.S_ISDIR(st.st_mode) and (st.st_uid, st.st_gid) == (uid, gid)
    assert stat.S_IMODE(st.st_mode) == 0o700


def test_second_run_leaves_students_choice_alone(home):
    uid, gid = owner()
    ensure_private_dir(str(home), "notebooks", uid, gid, 0o700)
    os.chmod(home / "notebooks", 0o750)
    prepared = ensure_private_dir(str(home), "notebooks", uid, gid, 0o700)
    assert not prepared.created
    assert stat.S_IMODE((home / "notebooks").stat().st_mode) == 0o750


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc"])
def test_rejects_names_that_are_not_one_component(home, name):
    with pytest.raises(ValueError):
        ensure_private_dir(str(home), name, *owner(), 0o700)


def test_symlink_is_never_followed(home, tmp_path):
    target = tmp_path / "target"
    target.mkdir(mode=0o755)
    (home / "notebooks").symlink_to(target)
    before = target.stat()
    with pytest.raises(UnsafeHomePath, match="symbolic link"):
        ensure_private_dir(str(home), "notebooks", *owner(), 0o700)
    after = target.stat()
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)


def test_file_in_the_way_is_refused(home):
    (home / "notebooks").write_text("not a folder")
    with pytest.raises(UnsafeHomePath, match="not a directory"):
        ensure_private_dir(str(home), "notebooks", *owner(), 0o700)
    assert (home / "notebooks").read_text() == "not a folder"


@needs_root
def test_folder_owned_by_someone_else_is_refused(home):
    (home / "notebooks").mkdir()
    os.chown(home / "notebooks", 0, 0)
    with pytest.raises(UnsafeHomePath, match="owned by uid 0"):
        ensure_private_dir(str(home), "notebooks", OTHER_UID, OTHER_GID, 0o700)
    assert (home / "notebooks").stat().st_uid == 0


@needs_root
def test_home_not_owned_by_student_is_refused(tmp_path):
    home = tmp_path / "roothome"
    home.mkdir()
    with pytest.raises(UnsafeHomePath, match="not by uid"):
        ensure_private_dir(str(home), "notebooks", OTHER_UID, OTHER_GID, 0o700)
    assert not (home / "notebooks").exists()


@needs_root
def test_symlinked_home_is_refused(tmp_path, home):
    link = tmp_path / "linkhome"
    link.symlink_to(home)
    with pytest.raises(UnsafeHomePath):
        ensure_private_dir(str(link), "notebooks", OTHER_UID, OTHER_GID, 0o700)


@needs_root
def test_hard_link_to_root_file_cannot_be_turned_into_a_chown(home, tmp_path):
    """A hard link named like the folder is a file: refused, the linked file untouched."""
    root_file = tmp_path / "root-secret"
    root_file.write_text("secret")
    os.chmod(root_file, 0o600)
    subprocess.run(["ln", str(root_file), str(home / "notebooks")], check=True)
    with pytest.raises(UnsafeHomePath):
        ensure_private_dir(str(home), "notebooks", OTHER_UID, OTHER_GID, 0o700)
    st = root_file.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
