from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from django_flakeid.fields import SnowflakeField, generate_id


@pytest.mark.django_db
def test_makemigrations_finds_no_changes() -> None:
    stdout = StringIO()

    call_command("makemigrations", "--check", "--dry-run", stdout=stdout, stderr=StringIO())

    assert stdout.getvalue() == "No changes detected\n"


@pytest.mark.django_db
def test_migration_state_uses_the_standard_default() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    state: ProjectState = loader.project_state(("testapp", "0001_initial"))

    order = state.models["testapp", "order"]
    field = order.fields["id"]

    assert isinstance(field, SnowflakeField)
    assert field.default is generate_id
    assert field.editable is False
