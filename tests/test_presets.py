from __future__ import annotations

from collections.abc import Mapping

import pytest

from django_flakeid import presets
from django_flakeid.layout import Layout

EXPECTED = {
    "twitter": (41, 5, 5, 12),
    "minimal": (53, 0, 0, 10),
    "single_dc": (41, 0, 10, 12),
    "large_cluster": (41, 8, 8, 6),
    "high_throughput": (41, 3, 3, 16),
}
WIDTHS = ("timestamp_bits", "datacenter_bits", "machine_bits", "sequence_bits")


def test_all_presets_names() -> None:
    assert list(presets.ALL_PRESETS) == list(EXPECTED)


@pytest.mark.parametrize(
    ("name", "constant"),
    [
        ("twitter", presets.PRESET_TWITTER),
        ("minimal", presets.PRESET_MINIMAL),
        ("single_dc", presets.PRESET_SINGLE_DC),
        ("large_cluster", presets.PRESET_LARGE_CLUSTER),
        ("high_throughput", presets.PRESET_HIGH_THROUGHPUT),
    ],
)
def test_named_preset_is_the_constant(name: str, constant: Mapping[str, int]) -> None:
    assert presets.ALL_PRESETS[name] is constant


@pytest.mark.parametrize(("name", "widths"), EXPECTED.items())
def test_exact_widths(name: str, widths: tuple[int, int, int, int]) -> None:
    assert dict(presets.ALL_PRESETS[name]) == dict(zip(WIDTHS, widths, strict=True))


@pytest.mark.parametrize("name", EXPECTED)
def test_widths_sum_to_63(name: str) -> None:
    assert sum(presets.ALL_PRESETS[name].values()) == 63


@pytest.mark.parametrize("name", EXPECTED)
def test_is_a_valid_layout(name: str) -> None:
    layout = Layout(**presets.ALL_PRESETS[name])
    assert layout.timestamp_bits == EXPECTED[name][0]


@pytest.mark.parametrize("name", EXPECTED)
def test_preset_is_read_only(name: str) -> None:
    preset = presets.ALL_PRESETS[name]
    with pytest.raises(TypeError):
        preset["sequence_bits"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        del preset["sequence_bits"]  # type: ignore[attr-defined]
    assert preset["sequence_bits"] == EXPECTED[name][3]


def test_preset_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        presets.ALL_PRESETS["mine"] = presets.PRESET_TWITTER  # type: ignore[index]
    assert "mine" not in presets.ALL_PRESETS
