from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from django_flakeid import conf


def pytest_configure(config: pytest.Config) -> None:
    # Node claims are host-wide; a run of the suite keeps its own, so that two runs at once
    # (tox in parallel, say) do not refuse each other's nodes.
    os.environ["FLAKEID_LOCK_DIR"] = tempfile.mkdtemp(prefix="flakeid-test-locks-")


@pytest.fixture(autouse=True)
def isolated_flakeid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from tests.settings alone: no FLAKEID_* variables, no cached generator."""
    for variable in conf.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    conf.clear_cache()
    yield
    conf.clear_cache()


@pytest.fixture
def lease_table(transactional_db: None) -> None:
    """The lease table as migrate leaves it: with its marker, which a flush between tests drops.

    Without the marker a lease's first holder waits one lease_ttl (the table may have been
    emptied under live holders); see django_flakeid.leases.
    """
    from django_flakeid.leases import TABLE_MARKER
    from django_flakeid.models import NodeLease

    NodeLease.objects.get_or_create(**TABLE_MARKER)
