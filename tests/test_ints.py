from __future__ import annotations

import pytest

from django_flakeid.errors import ConfigurationTypeError
from django_flakeid.ints import check_int, is_int


class IntSubclass(int):
    pass


class TestIsInt:
    @pytest.mark.parametrize("value", [0, -4, 2**70, IntSubclass(3)])
    def test_accepts_ints(self, value: object) -> None:
        assert is_int(value)

    @pytest.mark.parametrize("value", [True, False, 1.0, "1", None, b"1", [1]])
    def test_refuses_bools_and_non_ints(self, value: object) -> None:
        assert not is_int(value)


class TestCheckInt:
    @pytest.mark.parametrize("value", [0, -4, 2**70])
    def test_accepts_ints(self, value: int) -> None:
        assert check_int("width", value) == value

    def test_returns_a_plain_int(self) -> None:
        assert type(check_int("width", IntSubclass(3))) is int

    @pytest.mark.parametrize("value", [1.0, True, False, "1", None, b"1"])
    def test_refuses_everything_else(self, value: object) -> None:
        with pytest.raises(ConfigurationTypeError) as caught:
            check_int("width", value)
        assert str(caught.value).startswith("width must be an integer, got ")
        assert repr(value) in str(caught.value)
