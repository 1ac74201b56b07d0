"""The example project as a new user runs it: `manage.py demo`, twice, then `check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"


@pytest.fixture
def run(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLAKEID_", "DJANGO_"))
    }
    env |= {"EXAMPLE_DATABASE_NAME": str(tmp_path / "shop.sqlite3")}
    env["FLAKEID_LOCK_DIR"] = str(tmp_path / "locks")

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    return manage


def test_demo_runs_twice_and_adds_an_order_each_time(run):
    first = run("demo")
    assert first.returncode == 0, first.stderr
    assert "1 order in the shop" in first.stdout
    order_id = next(line.split()[1] for line in first.stdout.splitlines() if "Order " in line)
    decoded = run("flakeid", "decode", order_id, "--format", "json")
    assert decoded.returncode == 0, decoded.stderr
    assert '"datacenter_id": 1' in decoded.stdout
    second = run("demo")
    assert second.returncode == 0, second.stderr
    assert "2 orders in the shop" in second.stdout


def test_example_project_passes_its_checks(run):
    result = run("check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
