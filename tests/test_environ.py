from __future__ import annotations

import pytest

from django_flakeid.environ import int_from_env
from django_flakeid.errors import ConfigurationError, FlakeIDError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("42", 42), ("-3", -3), ("+5", 5), (" 7 ", 7), ("0012", 12), ("9\n", 9)],
)
def test_integers(raw: str, expected: int) -> None:
    assert int_from_env("NODE", {"NODE": raw}) == expected


def test_unset_is_none() -> None:
    assert int_from_env("NODE", {"OTHER": "1"}) is None


@pytest.mark.parametrize("raw", ["abc", "1.5", "", " ", "0x1f", "1e3", "1_000", "1 2", "--1"])
def test_not_an_integer(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        int_from_env("FLAKEID_MACHINE_ID", {"FLAKEID_MACHINE_ID": raw})
    message = str(caught.value)
    assert "FLAKEID_MACHINE_ID" in message
    assert repr(raw) in message
    assert isinstance(caught.value, FlakeIDError)
    assert isinstance(caught.value, ValueError)


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAKEID_TEST_NODE", "19")
    assert int_from_env("FLAKEID_TEST_NODE") == 19
    monkeypatch.delenv("FLAKEID_TEST_NODE")
    assert int_from_env("FLAKEID_TEST_NODE") is None


def test_given_mapping_wins_over_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAKEID_TEST_NODE", "19")
    assert int_from_env("FLAKEID_TEST_NODE", {}) is None


@pytest.mark.parametrize("raw", ["\u0661\u0662", "\uff11\uff12", "3\u0663", "\u00b2"])
def test_only_ascii_digits(raw: str) -> None:
    # int() reads these as numbers (Arabic-Indic, fullwidth digits); a node ID must not.
    with pytest.raises(ConfigurationError, match="FLAKEID_MACHINE_ID"):
        int_from_env("FLAKEID_MACHINE_ID", {"FLAKEID_MACHINE_ID": raw})


def test_more_digits_than_python_converts_is_a_clear_error() -> None:
    raw = "1" * 5000
    with pytest.raises(ConfigurationError) as caught:
        int_from_env("FLAKEID_EPOCH_MS", {"FLAKEID_EPOCH_MS": raw})
    message = str(caught.value)
    assert "FLAKEID_EPOCH_MS" in message
    assert "5000 characters" in message
    assert len(message) < 200
