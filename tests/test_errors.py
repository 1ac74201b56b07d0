from __future__ import annotations

import pytest

import django_flakeid
from django_flakeid import errors
from django_flakeid.errors import (
    BackfillError,
    ClockBackwardsError,
    ConfigurationError,
    ConfigurationTypeError,
    EpochError,
    FlakeIDError,
    ForkedProcessError,
    InvalidIDError,
    LeaseError,
    NodeInUseError,
    TimestampOverflowError,
)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (ConfigurationError, (FlakeIDError, ValueError)),
        (ConfigurationTypeError, (FlakeIDError, ConfigurationError, ValueError, TypeError)),
        (InvalidIDError, (FlakeIDError, ValueError)),
        (ClockBackwardsError, (FlakeIDError,)),
        (TimestampOverflowError, (FlakeIDError,)),
        (EpochError, (FlakeIDError,)),
        (ForkedProcessError, (FlakeIDError,)),
        (NodeInUseError, (FlakeIDError,)),
        (LeaseError, (FlakeIDError,)),
        (BackfillError, (FlakeIDError, ValueError)),
    ],
)
def test_hierarchy(error: type[FlakeIDError], bases: tuple[type[Exception], ...]) -> None:
    for base in bases:
        assert issubclass(error, base)


@pytest.mark.parametrize(
    "error",
    [
        ClockBackwardsError,
        TimestampOverflowError,
        EpochError,
        ForkedProcessError,
        NodeInUseError,
        LeaseError,
    ],
)
def test_runtime_errors_are_not_value_or_type_errors(error: type[FlakeIDError]) -> None:
    # Callers that catch ValueError for bad input must not swallow an operational failure.
    assert not issubclass(error, (ValueError, TypeError))


def test_invalid_id_is_not_a_configuration_error() -> None:
    assert not issubclass(InvalidIDError, ConfigurationError)


def test_flakeid_error_is_an_exception() -> None:
    assert issubclass(FlakeIDError, Exception)
    with pytest.raises(FlakeIDError, match="boom"):
        raise ConfigurationTypeError("boom")


def test_every_error_is_a_flakeid_error_exported_by_the_package() -> None:
    defined = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert len(defined) >= 10
    for error in defined:
        assert issubclass(error, FlakeIDError)
        assert error.__name__ in django_flakeid.__all__
        assert getattr(django_flakeid, error.__name__) is error
