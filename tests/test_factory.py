from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from django_flakeid import factory, hostclaim
from django_flakeid.errors import (
    ConfigurationError,
    ConfigurationTypeError,
    FlakeIDError,
    NodeInUseError,
)
from django_flakeid.factory import (
    default_generator,
    make_generator,
    make_generator_from_env,
    next_id,
    next_ids,
    resolve_preset,
    set_default_source,
)
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import DEFAULT_EPOCH_MS
from django_flakeid.presets import ALL_PRESETS, PRESET_TWITTER

T = 1_700_000_000_000
ENV_NAMES = ("FLAKEID_DATACENTER_ID", "FLAKEID_MACHINE_ID", "FLAKEID_EPOCH_MS")


def widths(gen: SnowflakeGenerator) -> tuple[int, int, int, int]:
    return (gen.timestamp_bits, gen.datacenter_bits, gen.machine_bits, gen.sequence_bits)


class Widths(Mapping[str, int]):
    """A mapping that is not a dict."""

    def __init__(self, **values: int) -> None:
        self._values = values

    def __getitem__(self, key: str) -> int:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class TestMakeGenerator:
    @pytest.mark.parametrize("preset", [None, "twitter", PRESET_TWITTER])
    def test_twitter_by_default(self, preset: Mapping[str, int] | str | None) -> None:
        gen = make_generator(preset)
        assert widths(gen) == (41, 5, 5, 12)
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (0, 0, DEFAULT_EPOCH_MS)

    def test_no_argument_is_twitter(self) -> None:
        assert widths(make_generator()) == (41, 5, 5, 12)

    @pytest.mark.parametrize("name", ALL_PRESETS)
    def test_by_name(self, name: str) -> None:
        preset = ALL_PRESETS[name]
        assert widths(make_generator(name)) == (
            preset["timestamp_bits"],
            preset["datacenter_bits"],
            preset["machine_bits"],
            preset["sequence_bits"],
        )

    @pytest.mark.parametrize(
        "preset",
        [
            {"timestamp_bits": 40, "datacenter_bits": 6, "machine_bits": 4, "sequence_bits": 13},
            MappingProxyType(
                {"timestamp_bits": 40, "datacenter_bits": 6, "machine_bits": 4, "sequence_bits": 13}
            ),
            Widths(timestamp_bits=40, datacenter_bits=6, machine_bits=4, sequence_bits=13),
        ],
        ids=["dict", "mappingproxy", "mapping"],
    )
    def test_from_a_mapping(self, preset: Mapping[str, int]) -> None:
        assert widths(make_generator(preset)) == (40, 6, 4, 13)

    def test_mapping_may_hold_any_generator_option(self) -> None:
        gen = make_generator({**PRESET_TWITTER, "machine_id": 9, "clock": lambda: T})
        decoded = gen.decode(gen.next_id())
        assert (decoded.machine_id, decoded.timestamp_ms) == (9, T)

    def test_overrides_win(self) -> None:
        gen = make_generator(
            "twitter", machine_bits=6, sequence_bits=11, machine_id=40, epoch_ms=1_000
        )
        assert widths(gen) == (41, 5, 6, 11)
        assert (gen.machine_id, gen.epoch_ms) == (40, 1_000)

    def test_overrides_do_not_change_the_preset(self) -> None:
        make_generator(PRESET_TWITTER, sequence_bits=11, machine_bits=6)
        assert PRESET_TWITTER["sequence_bits"] == 12
        assert PRESET_TWITTER["machine_bits"] == 5

    def test_resolved_preset_is_a_fresh_dict(self) -> None:
        resolved = resolve_preset("minimal")
        resolved["sequence_bits"] = 1
        assert resolve_preset("minimal")["sequence_bits"] == 10

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match="Unknown preset 'snowflake'") as caught:
            make_generator("snowflake")
        assert isinstance(caught.value, FlakeIDError)
        for name in ALL_PRESETS:
            assert name in str(caught.value)

    @pytest.mark.parametrize("preset", [41, ["twitter"], b"twitter", 1.5])
    def test_wrong_preset_type(self, preset: object) -> None:
        with pytest.raises(TypeError, match="preset must be a mapping") as caught:
            make_generator(preset)  # type: ignore[arg-type]
        assert isinstance(caught.value, ConfigurationTypeError)

    def test_bad_widths_are_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="sum to 63"):
            make_generator("twitter", sequence_bits=13)

    def test_capacity_repr(self) -> None:
        assert repr(make_generator("twitter").capacity()) == (
            "Capacity(years=69.7, nodes=1024, ids_per_sec=4,096,000)"
        )


class TestMakeGeneratorFromEnv:
    @pytest.fixture(autouse=True)
    def clean_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)

    def test_reads_the_variables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "3")
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "17")
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "1600000000000")
        gen = make_generator_from_env("twitter", clock=lambda: T)
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (3, 17, 1_600_000_000_000)
        decoded = gen.decode(gen.next_id())
        assert (decoded.datacenter_id, decoded.machine_id, decoded.timestamp_ms) == (3, 17, T)
        assert gen.next_id() >> 22 == T - 1_600_000_000_000

    def test_unset_variables_fall_back_to_the_defaults(self) -> None:
        gen = make_generator_from_env()
        assert widths(gen) == (41, 5, 5, 12)
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (0, 0, DEFAULT_EPOCH_MS)

    def test_only_some_variables_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "1023")
        gen = make_generator_from_env("single_dc")
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (0, 1023, DEFAULT_EPOCH_MS)

    def test_explicit_overrides_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "3")
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "17")
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "1600000000000")
        gen = make_generator_from_env(machine_id=9, epoch_ms=0)
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (3, 9, 0)

    def test_custom_variable_names(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "17")
        monkeypatch.setenv("APP_DC", "2")
        monkeypatch.setenv("APP_WORKER", "4")
        monkeypatch.setenv("APP_EPOCH", "1000")
        gen = make_generator_from_env(
            "large_cluster",
            datacenter_env="APP_DC",
            machine_env="APP_WORKER",
            epoch_env="APP_EPOCH",
        )
        assert widths(gen) == (41, 8, 8, 6)
        assert (gen.datacenter_id, gen.machine_id, gen.epoch_ms) == (2, 4, 1000)

    @pytest.mark.parametrize("variable", ENV_NAMES)
    @pytest.mark.parametrize("raw", ["abc", "1.5", "", "0x10"])
    def test_malformed_value(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
    ) -> None:
        monkeypatch.setenv(variable, raw)
        with pytest.raises(ConfigurationError) as caught:
            make_generator_from_env()
        assert f"{variable}={raw!r}" in str(caught.value)

    def test_value_out_of_range_for_the_layout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "32")
        with pytest.raises(ConfigurationError, match="machine_id must be from 0 to 31"):
            make_generator_from_env("twitter")


@pytest.fixture
def no_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No source and no default generator yet, with node claims kept in a private folder."""
    monkeypatch.setenv(hostclaim.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(factory, "_default_source", None)
    monkeypatch.setattr(factory, "_default", None)
    monkeypatch.setattr(factory, "_default_claim", None)
    yield
    claim = factory._default_claim
    if claim is not None:
        claim.release()


@pytest.mark.usefixtures("no_default")
class TestModuleLevel:
    def test_without_a_source_a_minimal_generator_is_used(self) -> None:
        gen = default_generator()
        assert widths(gen) == (53, 0, 0, 10)
        assert default_generator() is gen

    def test_next_id_and_next_ids_come_from_the_default(self) -> None:
        before = time.time_ns() // 1_000_000
        ids = [next_id(), *next_ids(3), next_id()]
        after = time.time_ns() // 1_000_000
        assert all(a < b for a, b in itertools.pairwise(ids))
        minimal_epoch = DEFAULT_EPOCH_MS
        # Minimal layout: everything above the 10 sequence bits is the timestamp.
        assert before <= (ids[0] >> 10) + minimal_epoch
        assert (ids[-1] >> 10) + minimal_epoch <= after

    def test_next_ids_checks_its_count(self) -> None:
        with pytest.raises(ConfigurationError, match="count must be >= 1"):
            next_ids(0)

    def test_a_source_redirects_the_module_functions(self) -> None:
        gen = make_generator("twitter", datacenter_id=3, machine_id=5, clock=lambda: T)
        calls: list[None] = []

        def source() -> SnowflakeGenerator:
            calls.append(None)
            return gen

        set_default_source(source)
        try:
            ids = [next_id(), *next_ids(3)]
            assert default_generator() is gen
        finally:
            set_default_source(None)
        assert len(calls) == 3
        assert [gen.decode(uid).sequence for uid in ids] == [0, 1, 2, 3]
        assert {(gen.decode(uid).datacenter_id, gen.decode(uid).machine_id) for uid in ids} == {
            (3, 5)
        }
        assert widths(default_generator()) == (53, 0, 0, 10)


def test_unknown_option_is_a_typed_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationTypeError, match=r"'machine_idd'; did you mean 'machine_id'\?"):
        make_generator("twitter", machine_idd=3)
    with pytest.raises(ConfigurationTypeError, match=r"unknown generator option 'colour'$"):
        make_generator({**PRESET_TWITTER, "colour": "blue"})


@pytest.mark.usefixtures("no_default")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_rebuilds_the_default_and_is_refused_its_parents_node() -> None:
    parent_id = next_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        signal.alarm(20)
        try:
            outcome = f"generated {next_id()}"
        except NodeInUseError as error:
            outcome = f"refused {error}"
        except BaseException as error:
            outcome = f"unexpected {error!r}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        outcome = pipe.read()
    assert outcome.startswith("refused datacenter_id=0 machine_id=0 ")
    assert f"pid {os.getpid()} " in outcome
    assert next_id() > parent_id
