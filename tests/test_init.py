from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import django_flakeid
from django_flakeid import errors, factory, generator, layout, presets

ROOT = Path(__file__).resolve().parent.parent


def test_every_exported_name_exists() -> None:
    assert len(set(django_flakeid.__all__)) == len(django_flakeid.__all__)
    for name in django_flakeid.__all__:
        assert hasattr(django_flakeid, name), name


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("SnowflakeGenerator", generator),
        ("Layout", layout),
        ("DecodedID", layout),
        ("Capacity", layout),
        ("MAX_ID", layout),
        ("make_generator", factory),
        ("make_generator_from_env", factory),
        ("next_id", factory),
        ("next_ids", factory),
        ("ALL_PRESETS", presets),
        ("PRESET_TWITTER", presets),
        ("FlakeIDError", errors),
        ("BackfillError", errors),
    ],
)
def test_exports_are_the_core_objects(name: str, module: object) -> None:
    assert getattr(django_flakeid, name) is getattr(module, name)


def test_import_needs_no_django(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import django_flakeid
        uid = django_flakeid.next_id()
        loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
        print(json.dumps({"uid": uid, "django": loaded}))
        """
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("FLAKEID_")
    }
    # Its own folder for node claims, so that this process's claims cannot stand in the way.
    env["FLAKEID_LOCK_DIR"] = str(tmp_path)
    before = time.time_ns() // 1_000_000
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    after = time.time_ns() // 1_000_000
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["django"] == []
    # The minimal layout: milliseconds since 2020 above 10 sequence bits.
    stamped = (result["uid"] >> 10) + 1_577_836_800_000
    assert before <= stamped <= after


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib arrived in Python 3.11")
def test_version_matches_pyproject() -> None:
    if sys.version_info >= (3, 11):
        import tomllib

        with (ROOT / "pyproject.toml").open("rb") as file:
            project = tomllib.load(file)["project"]
        assert django_flakeid.__version__ == project["version"]
