from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_flakeid import hostclaim, lockdir
from django_flakeid.errors import ConfigurationError
from django_flakeid.layout import Layout

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare, as root"
)
ROOT = Path(__file__).resolve().parent.parent
FIX = (
    "set FLAKEID_LOCK_DIR to a folder owned by root or by this user (uid {uid}) that every "
    "process of this host can write, with the sticky bit if others may write it"
)


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder that any user can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="flakeid-lockdir-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def as_nobody(code: str, prefix: tuple[str, ...] = ()) -> str:
    """Run ``code`` as user nobody (as root under ``prefix``); what it printed."""
    # The interpreter lives in root's home: the process starts as root, imports what it
    # needs, and only then becomes nobody.
    drop = (
        ""
        if prefix
        else f"import pwd; os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    )
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from django_flakeid import hostclaim, lockdir\n"
        "from django_flakeid.errors import ConfigurationError\n"
        "from django_flakeid.layout import Layout\n" + drop + textwrap.dedent(code)
    )
    result = subprocess.run(
        [*prefix, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def refusal(directory: Path) -> str:
    with pytest.raises(ConfigurationError) as caught:
        lockdir.prepare(directory)
    # Claims go through the same checks, and the system check reports the same problem.
    with pytest.raises(ConfigurationError, match="FLAKEID_LOCK_DIR"):
        hostclaim.claim_node(Layout(), 0, 0, directory)
    found = lockdir.problem({lockdir.LOCK_DIR_ENV: str(directory)})
    assert found is not None
    assert str(caught.value) == f"{found[0]}; {found[1]}"
    return str(caught.value)


class TestWhere:
    def test_the_default_is_one_fixed_folder_whatever_the_temporary_folder(
        self, monkeypatch, tmp_path
    ):
        monkeypatch.delenv(lockdir.LOCK_DIR_ENV, raising=False)
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        assert lockdir.default_lock_dir() == Path("/dev/shm/django-flakeid")
        assert hostclaim.default_lock_dir is lockdir.default_lock_dir

    def test_the_environment_names_an_absolute_folder(self, monkeypatch):
        monkeypatch.setenv(lockdir.LOCK_DIR_ENV, "/srv//locks/")
        assert lockdir.default_lock_dir() == Path("/srv/locks")
        assert lockdir.default_lock_dir({lockdir.LOCK_DIR_ENV: ""}) == Path(
            "/dev/shm/django-flakeid"
        )

    def test_a_relative_folder_is_a_configuration_error(self, monkeypatch):
        monkeypatch.setenv(lockdir.LOCK_DIR_ENV, "locks")
        message = (
            "FLAKEID_LOCK_DIR='locks' is not an absolute path, so processes started in "
            "different folders would not meet"
        )
        hint = (
            "set FLAKEID_LOCK_DIR to an absolute path, or unset it to use /dev/shm/django-flakeid"
        )
        assert lockdir.problem() == (message, hint)
        with pytest.raises(ConfigurationError) as caught:
            lockdir.default_lock_dir()
        assert str(caught.value) == f"{message}; {hint}"
        with pytest.raises(ConfigurationError, match="'locks' is not an absolute path"):
            hostclaim.claim_node(Layout(), 0, 0)
        with pytest.raises(ConfigurationError, match="must be an absolute path"):
            lockdir.prepare(Path("locks"))


class TestCreating:
    def test_a_missing_folder_is_created_sticky_and_shared(self, tmp_path):
        assert lockdir.problem({lockdir.LOCK_DIR_ENV: str(tmp_path / "a" / "b")}) is None
        assert not (tmp_path / "a").exists()
        assert lockdir.prepare(tmp_path / "a" / "b") == tmp_path / "a" / "b"
        assert (tmp_path / "a" / "b").stat().st_mode & 0o7777 == 0o1777

    def test_an_existing_folder_of_this_user_is_left_as_it_is(self, tmp_path):
        (tmp_path / "mine").mkdir(mode=0o700)
        lockdir.prepare(tmp_path / "mine")
        assert (tmp_path / "mine").stat().st_mode & 0o7777 == 0o700
        assert lockdir.problem({lockdir.LOCK_DIR_ENV: str(tmp_path / "mine")}) is None

    def test_a_folder_that_cannot_be_created_is_a_configuration_error(self, tmp_path):
        (tmp_path / "file").write_text("")
        with pytest.raises(ConfigurationError) as caught:
            hostclaim.claim_node(Layout(), 0, 0, tmp_path / "file" / "locks")
        fix = FIX.format(uid=os.geteuid())
        assert str(caught.value) == (
            f"cannot create the folder of host claims {tmp_path}/file/locks (Not a directory); "
            + fix
        )
        assert lockdir.problem({lockdir.LOCK_DIR_ENV: f"{tmp_path}/file/locks"}) == (
            f"the folder of host claims {tmp_path}/file/locks does not exist and this process "
            f"(uid {os.geteuid()}) cannot create it in {tmp_path}/file",
            fix,
        )

    def test_a_file_is_not_a_folder(self, tmp_path):
        (tmp_path / "file").write_text("")
        assert refusal(tmp_path / "file") == (
            f"the folder of host claims {tmp_path}/file is not a folder; "
            + FIX.format(uid=os.geteuid())
        )


@needs_root
class TestOwnership:
    def test_another_users_folder_is_refused(self, tmp_path):
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o755)
        os.chown(theirs, NOBODY, NOBODY)
        assert refusal(theirs) == (
            f"the folder of host claims {theirs} belongs to uid 65534 (nobody), another user, "
            "who could delete live processes' lock files or hold every node; remove it (as "
            f"root) or {FIX.format(uid=0)}"
        )
        assert os.listdir(theirs) == []

    def test_a_symlink_to_another_users_folder_is_refused(self, tmp_path):
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o1777)
        os.chown(theirs, NOBODY, NOBODY)
        (tmp_path / "link").symlink_to(theirs)
        assert "belongs to uid 65534 (nobody), another user" in refusal(tmp_path / "link")
        assert os.listdir(theirs) == []

    def test_a_symlink_another_user_owns_is_refused_whatever_it_points_to(self, tmp_path):
        (tmp_path / "ours").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "ours")
        os.lchown(tmp_path / "link", NOBODY, NOBODY)
        assert "is a symlink owned by uid 65534 (nobody), another user" in refusal(
            tmp_path / "link"
        )

    def test_a_folder_root_owns_is_fine_for_every_user(self, reachable):
        shared = reachable / "shared"
        shared.mkdir()
        shared.chmod(0o1777)
        assert (
            as_nobody(
                f"""
            print(hostclaim.claim_node(Layout(), 0, 0, Path({str(shared)!r})).machine_id)
            """
            )
            == "0"
        )


class TestPermissions:
    def test_a_folder_others_may_write_without_the_sticky_bit_is_refused(self, tmp_path):
        (tmp_path / "open").mkdir()
        (tmp_path / "open").chmod(0o777)
        assert refusal(tmp_path / "open") == (
            f"the folder of host claims {tmp_path}/open is writable by other users without the "
            "sticky bit (mode 0777), so any of them could delete a live process's lock file; "
            f"run 'chmod +t {tmp_path}/open', or {FIX.format(uid=os.geteuid())}"
        )
        (tmp_path / "open").chmod(0o1777)
        assert lockdir.prepare(tmp_path / "open") == tmp_path / "open"

    def test_a_folder_writable_by_its_group_needs_the_sticky_bit_too(self, tmp_path):
        (tmp_path / "group").mkdir()
        (tmp_path / "group").chmod(0o770)
        assert "mode 0770" in refusal(tmp_path / "group")

    @needs_root
    def test_a_folder_this_user_cannot_write_is_refused(self, reachable):
        (reachable / "locks").mkdir(mode=0o755)
        (reachable / "parent").mkdir(mode=0o755)
        out = as_nobody(
            f"""
            for folder in ({str(reachable / "locks")!r}, {str(reachable / "parent" / "x")!r}):
                print(lockdir.problem({{lockdir.LOCK_DIR_ENV: folder}}))
                try:
                    hostclaim.claim_node(Layout(), 0, 0, Path(folder))
                except ConfigurationError as error:
                    print(error)
            """
        ).splitlines()
        fix = FIX.format(uid=NOBODY)
        assert out == [
            str(
                (
                    f"this process (uid 65534) cannot write to the folder of host claims "
                    f"{reachable}/locks",
                    fix,
                )
            ),
            f"this process (uid 65534) cannot write to the folder of host claims "
            f"{reachable}/locks; {fix}",
            str(
                (
                    f"the folder of host claims {reachable}/parent/x does not exist and this "
                    f"process (uid 65534) cannot create it in {reachable}/parent",
                    fix,
                )
            ),
            f"cannot create the folder of host claims {reachable}/parent/x (Permission "
            f"denied); {fix}",
        ]

    @needs_unshare
    def test_a_read_only_folder_is_refused_even_for_root(self, tmp_path):
        (tmp_path / "locks").mkdir()
        out = as_nobody(
            "print(lockdir.problem())",
            prefix=(
                "unshare",
                "--mount",
                "sh",
                "-c",
                f"mount --bind {tmp_path} {tmp_path} && mount -o remount,bind,ro {tmp_path} "
                f'&& FLAKEID_LOCK_DIR={tmp_path}/locks exec "$0" "$@"',
            ),
        )
        assert out.startswith(
            f"('this process (uid 0) cannot write to the folder of host claims {tmp_path}/locks'"
        )
