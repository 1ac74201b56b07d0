"""README.md is the reference: everything a user can name must be in it, and its examples run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from django.core.management import load_command_class

import django_flakeid
from django_flakeid import checks, conf, hostclaim

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", django_flakeid.__all__)
def test_every_public_name_is_documented(name):
    assert f"`{name}" in README


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in checks.CHECKS])
def test_every_check_id_is_documented(check_id):
    assert f"| `{check_id}` |" in README


def test_check_ids_are_unique_and_well_formed():
    ids = [check_id for check_id, _ in checks.CHECKS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"django_flakeid\.[EW]\d{3}", check_id) for check_id in ids)


@pytest.mark.parametrize("key", conf.SETTING_KEYS)
def test_every_setting_key_is_in_the_settings_table(key):
    assert f"\n| `{key}` |" in README


@pytest.mark.parametrize(
    "variable", [*conf.ENVIRONMENT_VARIABLES.values(), hostclaim.LOCK_DIR_ENV, "FLAKEID_TEST_DB"]
)
def test_every_environment_variable_is_documented(variable):
    assert variable in README


def test_every_subcommand_has_a_synopsis():
    parser = load_command_class("django_flakeid", "flakeid").create_parser("manage.py", "flakeid")
    (subparsers,) = [action for action in parser._actions if action.dest == "subcommand"]
    assert isinstance(subparsers.choices, dict)
    names = list(subparsers.choices)
    assert names == ["decode", "generate", "info", "leases", "backfill", "rekey"]
    for name in names:
        assert f"    manage.py flakeid {name}" in README


def test_readme_shows_the_two_commands_for_a_fresh_machine():
    assert "    python -m pip install -e . && python example_project/manage.py demo\n" in README
    assert '    python -m pip install -e ".[test]" && python -m pytest\n' in README


def test_generator_example_runs_and_prints_what_it_says():
    section = README[README.index("## The generator (no Django needed)") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block.group(1), {})
    decoded, capacity = out.getvalue().splitlines()
    assert re.fullmatch(
        r"DecodedID\(raw=\d+, generated_at='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', "
        r"datacenter_id=1, machine_id=7, sequence=0\)",
        decoded,
    )
    assert capacity == "Capacity(years=69.7, nodes=1024, ids_per_sec=4,096,000)"


def test_preset_table_matches_the_presets():
    for name, preset in django_flakeid.ALL_PRESETS.items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{name}`"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        widths = [int(cell) for cell in cells[2:6]]
        assert widths == [
            preset["timestamp_bits"],
            preset["datacenter_bits"],
            preset["machine_bits"],
            preset["sequence_bits"],
        ]
        capacity = django_flakeid.make_generator(name).capacity()
        assert cells[6] == f"{capacity.total_nodes:,}"
        assert cells[7] == f"{capacity.ids_per_sec_per_node:,}"
        assert cells[8] == f"{capacity.timestamp_range_years:,} years"


def test_changelog_has_an_unreleased_section_on_top():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.split("\n## ")[1].startswith("Unreleased")
