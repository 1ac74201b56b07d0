from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_flakeid import conf


@pytest.fixture(autouse=True)
def isolated_flakeid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from tests.settings alone: no FLAKEID_* variables, no cached generator."""
    for variable in conf.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    conf.clear_cache()
    yield
    conf.clear_cache()
