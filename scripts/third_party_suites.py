"""Run django-taggit's and django-filter's own test suites with Snowflake keys on their models.

Usage: python scripts/third_party_suites.py [--db sqlite|postgresql|mariadb] [--keep]

Downloads each sdist from PyPI into a temporary folder, switches the app's models and its test
models to ``SnowflakeAutoField`` the way a project adopting django-flakeid would, and runs the
suite with the app's own command. A test that fails because the app (or its test) takes keys to be
small and sequential is listed below with its reason; the run fails when any other test fails, and
when a listed test passes, so the list and the README's adoption guide stay true.

SQLite is the default (nothing to start, and it is what both apps' suites use). ``--db`` runs the
same suites on the local PostgreSQL or MariaDB server, with the connection variables of the
project's own tests (``FLAKEID_TEST_DB_HOST``, ``_PORT``, ``_USER``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, TypeAlias

from django.test.runner import DiscoverRunner

_ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType]
_OptExcInfo: TypeAlias = _ExcInfo | tuple[None, None, None]

SCRIPTS = Path(__file__).resolve().parent
# The apps' test commands import the runner from this file, with SCRIPTS on their path.
RUNNER = f"{Path(__file__).stem}.ExpectedFailuresRunner"
EXPECTED_VARIABLE = "FLAKEID_EXPECTED_FAILURES"
DATABASES = ("sqlite", "postgresql", "mariadb")

# Appended to each app's test settings, so its own file stays as shipped above the block.
SNOWFLAKE_SETTINGS = """

# django-flakeid: Snowflake keys for every model whose app names no default of its own.
DEFAULT_AUTO_FIELD = "django_flakeid.fields.SnowflakeAutoField"
# Installed as the README asks: its checks validate FLAKEID and ready() registers its lookups.
# A tuple on the right extends a list or a tuple alike, and the apps' tests add to it by type.
INSTALLED_APPS += ("django_flakeid",)
# One test process on one host: a fixed node needs no lease table and no claim on the host.
FLAKEID = {"preset": "twitter", "datacenter_id": 1, "machine_id": 7}
"""

# taggit's 0002 adds the index taggit_tagg_content_8fc721_idx, and its 0006 renames the old
# index_together to that same name, so the migration state holds the index twice. PostgreSQL and
# MariaDB change a key column in place, but SQLite rebuilds the table and then creates every index
# of the state: the second CREATE INDEX fails. It fails the same way for a switch to BigAutoField,
# so it is taggit's, not the key's. This repair touches the state only, as a project that owns
# taggit's migrations (MIGRATION_MODULES) would write it.
TAGGIT_INDEX_REPAIR = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex("taggeditem", "taggit_tagg_content_8fc721_idx"),
                migrations.AddIndex(
                    "taggeditem",
                    models.Index(
                        fields=["content_type", "object_id"],
                        name="taggit_tagg_content_8fc721_idx",
                    ),
                ),
            ]
        ),
    ]
"""

_FIRST_KEY_IS_ONE = (
    "setUpTestData saves an Article with author_id=1, a key only a fresh sequence's first row gets"
)
_KEYS_ONE_TO_FOUR = "saves Articles with author_id=1..4, the keys a fresh sequence gives four Users"
_RESPONSE_IDS = "expects the response to show the keys 3, 2, 1 of three rows saved in a fresh table"
# The same tests fail on PostgreSQL with django-filter's own BigAutoField: a sequence does not
# restart between test classes there.
_FILTER_ON_SQLITE_AND_POSTGRESQL = {
    "tests.test_filtering.ChoiceFilterTests.test_filtering": _FIRST_KEY_IS_ONE,
    "tests.test_filtering.ChoiceFilterTests.test_filtering_on_empty_choice": _FIRST_KEY_IS_ONE,
    "tests.test_filtering.ChoiceFilterTests.test_filtering_on_explicitly_defined_field": (
        _FIRST_KEY_IS_ONE
    ),
    "tests.test_filtering.ChoiceFilterTests.test_filtering_on_null_choice": _FIRST_KEY_IS_ONE,
    "tests.test_filtering.MultipleChoiceFilterTests.test_filtering_on_null_choice": (
        _KEYS_ONE_TO_FOUR
    ),
    "tests.rest_framework.test_integration.DjangoFilterOrderingTests.test_default_ordering": (
        _RESPONSE_IDS
    ),
}
# InnoDB checks a foreign key at once, so the class's setUpTestData fails before its tests run.
_FILTER_ON_MARIADB = {
    "setUpClass (tests.test_filtering.ChoiceFilterTests)": _FIRST_KEY_IS_ONE,
    "tests.test_filtering.MultipleChoiceFilterTests.test_filtering_on_null_choice": (
        _KEYS_ONE_TO_FOUR
    ),
    "tests.rest_framework.test_integration.DjangoFilterOrderingTests.test_default_ordering": (
        _RESPONSE_IDS
    ),
}

# taggit's suite is not written for MariaDB: these fail there with taggit's own AutoField too.
_CASE_INSENSITIVE = "MariaDB's collation finds 'AWESOME' equal to 'awesome': one tag, not two"
_DOUBLE_QUOTES = "counts joins by the text 'INNER JOIN \"table\"', which MariaDB writes with `"
_TAGGIT_ON_MARIADB = {
    **{
        f"tests.tests.{case}.test_slugify": _CASE_INSENSITIVE
        for case in (
            "TagModelCustomPKTestCase",
            "TagModelDirectCustomPKTestCase",
            "TagModelDirectTestCase",
            "TagModelOfficialTestCase",
            "TagModelTestCase",
            "TagUUIDModelTestCase",
        )
    },
    **{
        f"tests.tests.{case}.test_prefetch_no_extra_join": _DOUBLE_QUOTES
        for case in (
            "TaggableManagerCustomPKTestCase",
            "TaggableManagerDirectCustomPKTestCase",
            "TaggableManagerDirectTestCase",
            "TaggableManagerDirectTrackedTestCase",
            "TaggableManagerInitializationTestCase",
            "TaggableManagerOfficialTestCase",
            "TaggableManagerTestCase",
            "TaggableManagerUUIDTestCase",
        )
    },
}


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    # How the app runs its own suite (its tox.ini), from the root of its sdist.
    command: tuple[str, ...]
    prepare: Callable[[Path, str], None]
    expected: Mapping[str, Mapping[str, str]]


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old``: a release that moved it must fail, not pass."""
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"{path}: expected {old!r} once, found it {text.count(old)} times")
    path.write_text(text.replace(old, new))


def database_settings(db: str) -> str:
    if db == "sqlite":
        return ""
    # The pid keeps two runs on one server from dropping each other's test database.
    test_name = f"test_thirdparty_{os.getpid()}"
    host = os.environ.get("FLAKEID_TEST_DB_HOST", "127.0.0.1")
    if db == "postgresql":
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": host,
            "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "5432"),
            "USER": os.environ.get("FLAKEID_TEST_DB_USER", "postgres"),
            "NAME": "postgres",
            "TEST": {"NAME": test_name},
        }
    else:
        database = {
            "ENGINE": "django.db.backends.mysql",
            "HOST": host,
            "PORT": os.environ.get("FLAKEID_TEST_DB_PORT", "3306"),
            "USER": os.environ.get("FLAKEID_TEST_DB_USER", "root"),
            "PASSWORD": "",
            "NAME": "test",
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"NAME": test_name, "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    return f"DATABASES = {{'default': {database!r}}}\n"


def prepare_taggit(root: Path, db: str) -> None:
    settings = root / "tests" / "settings.py"
    # The block's DEFAULT_AUTO_FIELD comes after taggit's own "django.db.models.AutoField".
    settings.write_text(settings.read_text() + SNOWFLAKE_SETTINGS + database_settings(db))
    # An AppConfig's default_auto_field wins over the setting: without this edit Tag and
    # TaggedItem keep AutoField, as they do in a project that leaves taggit's AppConfig alone.
    replace_once(
        root / "taggit" / "apps.py", '    default_auto_field = "django.db.models.AutoField"\n', ""
    )
    (root / "taggit" / "migrations" / "0007_index_state_repair.py").write_text(TAGGIT_INDEX_REPAIR)
    if db != "sqlite":
        # GenericTaggedItemBase.object_id holds a tagged object's key in a 32-bit column on
        # PostgreSQL and MariaDB: every tags.add() on a model with Snowflake keys overflows it
        # (133 tests fail). The README tells users to tag through a model with a 64-bit
        # object_id; widening the base gives taggit's own tagged-item models that column. SQLite
        # stores 64 bits in any integer column, so there the app runs as shipped.
        replace_once(
            root / "taggit" / "models.py",
            "object_id = models.IntegerField(",
            "object_id = models.BigIntegerField(",
        )
    # As a project does after changing DEFAULT_AUTO_FIELD: new migrations on top of the shipped
    # ones, so the run also switches every existing table in place (AlterField on each key and
    # on the foreign keys to it). taggit's suite then checks that makemigrations finds nothing.
    make_migrations(root, ("taggit", "tests"))


def make_migrations(root: Path, apps: tuple[str, ...]) -> None:
    folders = [root / app / "migrations" for app in apps]
    shipped = {path for folder in folders for path in folder.glob("*.py")}
    run_quietly(
        [sys.executable, "-m", "django", "makemigrations", *apps],
        root,
        {"DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    # On SQLite nothing in taggit's suite tells a Snowflake key from a small one, so a run in
    # which no key switched would pass unnoticed.
    for folder in folders:
        written = [path for path in folder.glob("*.py") if path not in shipped]
        if not any("SnowflakeAutoField(" in path.read_text() for path in written):
            raise RuntimeError(f"makemigrations switched no key to SnowflakeAutoField in {folder}")


def prepare_filter(root: Path, db: str) -> None:
    # django-filter's test apps have no migrations: the test database is built from the models,
    # so the setting alone gives every table a Snowflake key. Its app has no models.
    settings = root / "tests" / "settings.py"
    settings.write_text(settings.read_text() + SNOWFLAKE_SETTINGS + database_settings(db))


SUITES = (
    Suite(
        name="django-taggit",
        version="5.0.1",
        command=("-m", "django", "test", "--settings=tests.settings"),
        prepare=prepare_taggit,
        expected={"sqlite": {}, "postgresql": {}, "mariadb": _TAGGIT_ON_MARIADB},
    ),
    Suite(
        name="django-filter",
        version="26.2",
        command=("runtests.py",),
        prepare=prepare_filter,
        expected={
            "sqlite": _FILTER_ON_SQLITE_AND_POSTGRESQL,
            "postgresql": _FILTER_ON_SQLITE_AND_POSTGRESQL,
            "mariadb": _FILTER_ON_MARIADB,
        },
    ),
)
# django-filter's tests/test_fields.py imports pytz (its requirements/test-ci.txt); both suites
# need Django REST framework, which the project's dev extra installs.
REQUIREMENTS = ("pytz",)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    # The project's own settings must not leak into an app's run (runtests.py uses setdefault).
    if "DJANGO_SETTINGS_MODULE" not in extra:
        env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def run_quietly(args: list[str], cwd: Path, extra: Mapping[str, str]) -> None:
    done = subprocess.run(
        args, cwd=cwd, env=child_environment(extra), capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.stdout.write(done.stdout + done.stderr)
        raise subprocess.CalledProcessError(done.returncode, args)


def fetch(workdir: Path) -> dict[str, Path]:
    pins = [f"{suite.name}=={suite.version}" for suite in SUITES]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "download", "--no-deps", "--no-binary", ":all:", "-d", str(workdir), *pins],
        check=True,
    )
    # Into the scratch folder, not the environment: nothing of the apps' stays behind.
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(workdir / "deps"), *REQUIREMENTS],
        check=True,
    )
    roots = {}
    for suite in SUITES:
        # Sdists spell their archive either way (django-taggit-5.0.1, django_filter-26.2).
        wanted = _normalized(f"{suite.name}-{suite.version}.tar.gz")
        [archive] = [path for path in workdir.glob("*.tar.gz") if _normalized(path.name) == wanted]
        with tarfile.open(archive) as tar:
            tar.extractall(workdir, filter="data")
        roots[suite.name] = workdir / archive.name.removesuffix(".tar.gz")
    return roots


def _normalized(filename: str) -> str:
    return filename.replace("-", "_").lower()


def run_suite(suite: Suite, root: Path, db: str, deps: Path) -> bool:
    started = time.monotonic()
    print(f"\n== {suite.name} {suite.version} on {db}", flush=True)
    suite.prepare(root, db)
    expected = suite.expected[db]
    extra = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(SCRIPTS), str(deps), os.environ.get("PYTHONPATH")])
        ),
        EXPECTED_VARIABLE: json.dumps(expected),
    }
    args = [sys.executable, *suite.command, "--noinput", f"--testrunner={RUNNER}"]
    passed = (
        subprocess.run(args, cwd=root, env=child_environment(extra), check=False).returncode == 0
    )
    verdict = "passed" if passed else "FAILED"
    print(
        f"== {suite.name} on {db}: {verdict} ({len(expected)} expected failures listed) "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return passed


class _Listed(unittest.TestCase):
    """Stands for a listed test id that never failed, in the result's list of errors."""

    def __init__(self, test_id: str) -> None:
        super().__init__()
        self._id = test_id

    def id(self) -> str:
        return self._id

    def __str__(self) -> str:
        return self._id


class ExpectedFailuresResult(unittest.TextTestResult):
    """A listed test that fails counts as an expected failure; one that does not, as an error.

    Django reports a failing ``tearDown`` or foreign-key check after the test's own outcome, so
    whether a listed test failed is only known once the whole run is over.
    """

    expected: ClassVar[Mapping[str, str]] = {}
    _failed: set[str]

    def startTestRun(self) -> None:
        super().startTestRun()
        self._failed = set()

    def addError(self, test: unittest.TestCase, err: _OptExcInfo) -> None:
        if not self._count_as_expected(test, err):
            super().addError(test, err)

    def addFailure(self, test: unittest.TestCase, err: _OptExcInfo) -> None:
        if not self._count_as_expected(test, err):
            super().addFailure(test, err)

    def addSubTest(
        self, test: unittest.TestCase, subtest: unittest.TestCase, err: _OptExcInfo | None
    ) -> None:
        if err is None or not self._count_as_expected(test, err):
            super().addSubTest(test, subtest, err)

    def _count_as_expected(self, test: unittest.TestCase, err: _OptExcInfo) -> bool:
        test_id = test.id()
        if test_id not in self.expected:
            return False
        # A test whose body and teardown both fail is still one expected failure.
        if test_id not in self._failed:
            self._failed.add(test_id)
            super().addExpectedFailure(test, err)
        return True

    def stopTestRun(self) -> None:
        for test_id in sorted(set(self.expected) - self._failed):
            self.errors.append(
                (
                    _Listed(test_id),
                    "Listed as an expected failure, but it did not fail: if the app no longer "
                    "assumes small sequential keys here, remove it from the list.\n",
                )
            )
        super().stopTestRun()

    def printErrors(self) -> None:
        super().printErrors()
        for test_id in sorted(self._failed):
            self.stream.writeln(f"expected failure: {test_id}: {self.expected[test_id]}")
        self.stream.flush()


class ExpectedFailuresRunner(DiscoverRunner):
    """Django's runner, with the failures listed in ``$FLAKEID_EXPECTED_FAILURES`` expected."""

    def get_resultclass(self) -> type[ExpectedFailuresResult]:
        listed: dict[str, str] = json.loads(os.environ.get(EXPECTED_VARIABLE, "{}"))

        class Result(ExpectedFailuresResult):
            expected = listed

        return Result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=DATABASES, default="sqlite", help="database to run on")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch folder and print where it is"
    )
    options = parser.parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="flakeid-third-party-"))
    try:
        roots = fetch(workdir)
        failed = [
            suite.name
            for suite in SUITES
            if not run_suite(suite, roots[suite.name], options.db, workdir / "deps")
        ]
    finally:
        if options.keep:
            print(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir)
    elapsed = time.monotonic() - started
    if failed:
        print(f"third-party suites on {options.db}: {', '.join(failed)} failed ({elapsed:.0f} s)")
        return 1
    print(f"third-party suites on {options.db}: all passed ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
