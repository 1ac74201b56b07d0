from __future__ import annotations

import os
import threading
from typing import Any, get_args

import pytest
from django.test import override_settings

from django_flakeid import conf
from django_flakeid.conf import ProblemKind, Sourced
from django_flakeid.errors import ConfigurationError, ForkedProcessError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.layout import DEFAULT_EPOCH_MS, Layout
from django_flakeid.presets import PRESET_TWITTER


def kinds(setting: Any) -> list[ProblemKind]:
    with override_settings(FLAKEID=setting):
        config, problems = conf.validate()
    assert config is None
    return [problem.kind for problem in problems]


class TestValidate:
    def test_test_settings(self) -> None:
        config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.layout == Layout(**PRESET_TWITTER, epoch_ms=DEFAULT_EPOCH_MS)
        assert config.node.datacenter_id == Sourced(
            "datacenter_id", 1, "setting", "FLAKEID['datacenter_id']"
        )
        assert config.node.machine_id == Sourced(
            "machine_id", 7, "setting", "FLAKEID['machine_id']"
        )
        assert config.epoch_ms == Sourced("epoch_ms", DEFAULT_EPOCH_MS, "default")
        assert config.preset_name == "twitter"

    def test_absent_setting_means_twitter_and_node_zero(self, settings: Any) -> None:
        del settings.FLAKEID

        config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.layout == Layout()
        assert config.node.datacenter_id == Sourced("datacenter_id", 0, "default")
        assert config.node.machine_id == Sourced("machine_id", 0, "default")
        assert not config.node.is_explicit

    def test_environment_fills_what_the_setting_leaves_out(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "3")
        monkeypatch.setenv("FLAKEID_MACHINE_ID", " 9 ")
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "1600000000000")

        with override_settings(FLAKEID={"machine_id": 4}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.node.datacenter_id == Sourced(
            "datacenter_id", 3, "environment", "FLAKEID_DATACENTER_ID"
        )
        assert config.node.machine_id == Sourced(
            "machine_id", 4, "setting", "FLAKEID['machine_id']"
        )
        assert config.epoch_ms == Sourced(
            "epoch_ms", 1600000000000, "environment", "FLAKEID_EPOCH_MS"
        )
        assert config.layout.epoch_ms == 1600000000000
        assert config.node.is_explicit

    def test_none_counts_as_absent(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "5")
        setting = {"preset": None, "machine_id": None, "epoch_ms": None, "sequence_bits": None}

        with override_settings(FLAKEID=setting):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.layout == Layout()
        assert config.node.machine_id.source == "environment"

    def test_one_explicit_id_is_an_explicit_identity(self) -> None:
        with override_settings(FLAKEID={"machine_id": 0}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.node.datacenter_id.source == "default"
        assert config.node.is_explicit

    def test_named_preset_with_width_overrides(self) -> None:
        setting = {"preset": "single_dc", "machine_bits": 8, "sequence_bits": 14}

        with override_settings(FLAKEID=setting):
            config, _problems = conf.validate()

        assert config is not None
        assert (config.layout.timestamp_bits, config.layout.machine_bits) == (41, 8)
        assert (config.layout.datacenter_bits, config.layout.sequence_bits) == (0, 14)
        assert config.preset_name is None

    def test_dict_preset(self) -> None:
        preset = {
            "timestamp_bits": 41,
            "datacenter_bits": 3,
            "machine_bits": 3,
            "sequence_bits": 16,
        }

        with override_settings(FLAKEID={"preset": preset}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.layout.sequence_bits == 16
        assert config.preset_name == "high_throughput"

    def test_not_a_dict(self) -> None:
        assert kinds(["twitter"]) == ["not_a_dict"]

    def test_every_problem_is_reported_at_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "soon")
        setting = {"machine_idd": 1, "timestamp_bits": "41", "datacenter_id": 1.5}

        assert kinds(setting) == [
            "unknown_key",
            "width_not_int",
            "environment_not_int",
            "node_not_int",
        ]

    def test_widths_checked_only_when_known(self) -> None:
        assert kinds({"preset": "twiter"}) == ["unknown_preset"]
        assert kinds({"preset": "twiter", "timestamp_bits": -1}) == [
            "unknown_preset",
            "width_negative",
        ]

    @pytest.mark.parametrize(
        ("setting", "expected"),
        [
            ({"sequence_bits": 13}, ["width_sum"]),
            ({"timestamp_bits": 0, "sequence_bits": 53}, ["width_too_small"]),
            ({"timestamp_bits": 0, "sequence_bits": 0}, ["width_sum", *["width_too_small"] * 2]),
            ({"preset": 41}, ["invalid_preset"]),
            ({"preset": {"timestamp_bits": 63}}, ["invalid_preset"]),
            ({"epoch_ms": -1}, ["epoch_negative"]),
            ({"epoch_ms": 1.0}, ["epoch_not_int"]),
            ({"machine_id": True}, ["node_not_int"]),
            ({"machine_id": 32}, ["node_out_of_range"]),
            ({"preset": "minimal", "datacenter_id": 1}, ["node_out_of_range"]),
        ],
    )
    def test_kinds(self, setting: dict[str, Any], expected: list[str]) -> None:
        assert kinds(setting) == expected

    def test_zero_widths_report_both_fields(self) -> None:
        with override_settings(FLAKEID={"timestamp_bits": 0, "sequence_bits": 0}):
            _config, problems = conf.validate()

        assert [problem.message for problem in problems] == [
            "FLAKEID's bit widths add up to 10 (0 + 5 + 5 + 0), not 63.",
            "timestamp_bits is 0; it must be at least 1.",
            "sequence_bits is 0; it must be at least 1.",
        ]

    def test_problem_kinds_are_all_reachable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Guards the Literal against kinds that nothing produces (and so no check reports).
        produced = {
            *kinds([]),
            *kinds({"x": 1, "preset": "nope"}),
            *kinds({"preset": 1}),
            *kinds({"timestamp_bits": "a", "datacenter_bits": -1}),
            *kinds({"sequence_bits": 0, "timestamp_bits": 53}),
            *kinds({"sequence_bits": 13}),
            *kinds({"machine_id": "1", "epoch_ms": "1"}),
            *kinds({"machine_id": 99}),
            *kinds({"epoch_ms": -5}),
        }
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "x")
        produced.update(kinds({}))

        assert produced == set(get_args(ProblemKind))


class TestGenerator:
    def test_follows_the_setting(self) -> None:
        generator = conf.get_generator()

        decoded = generator.decode(generator.next_id())
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)
        assert generator.layout == conf.get_layout()

    def test_cached(self) -> None:
        assert conf.get_generator() is conf.get_generator()

    def test_built_once_under_concurrent_first_use(self) -> None:
        barrier = threading.Barrier(8)
        seen: list[SnowflakeGenerator] = []

        def first_use() -> None:
            barrier.wait()
            seen.append(conf.get_generator())

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(seen) == 8
        assert {id(generator) for generator in seen} == {id(seen[0])}

    def test_override_settings_rebuilds(self) -> None:
        before = conf.get_generator()

        with override_settings(FLAKEID={"machine_id": 30, "datacenter_id": 2}):
            inside = conf.get_generator()
            assert (inside.datacenter_id, inside.machine_id) == (2, 30)

        after = conf.get_generator()
        assert inside is not before
        assert (after.datacenter_id, after.machine_id) == (1, 7)

    def test_other_settings_keep_the_cache(self) -> None:
        before = conf.get_generator()

        with override_settings(TIME_ZONE="Asia/Tokyo"):
            assert conf.get_generator() is before

    def test_invalid_setting_raises_only_when_used(self) -> None:
        with override_settings(FLAKEID={"machine_id": 99, "machine_idd": 1}):
            with pytest.raises(ConfigurationError) as excinfo:
                conf.get_generator()
            with pytest.raises(ConfigurationError):
                conf.get_layout()

        assert str(excinfo.value) == (
            "Invalid FLAKEID: FLAKEID has an unknown key 'machine_idd' (and 1 more problem). "
            "Run 'manage.py check' for details."
        )

    def test_single_problem_message(self) -> None:
        with override_settings(FLAKEID="twitter"), pytest.raises(ConfigurationError) as excinfo:
            conf.get_config()

        assert str(excinfo.value) == (
            "Invalid FLAKEID: FLAKEID must be a dict, not str. Run 'manage.py check' for details."
        )

    def test_environment_read_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with override_settings(FLAKEID={}):
            monkeypatch.setenv("FLAKEID_MACHINE_ID", "12")
            assert conf.get_config().node.machine_id.value == 12

            monkeypatch.setenv("FLAKEID_MACHINE_ID", "13")
            assert conf.get_config().node.machine_id.value == 12

            conf.clear_cache()
            assert conf.get_config().node.machine_id.value == 13

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
    def test_inherited_generator_refuses_in_the_child(self) -> None:
        parent = conf.get_generator()
        parent.next_id()
        read_end, write_end = os.pipe()

        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which coverage does not follow
            os.close(read_end)
            try:
                same = conf.get_generator() is parent
                conf.get_generator().next_id()
            except ForkedProcessError:
                outcome = f"refused same={same}"
            except BaseException as error:
                outcome = f"unexpected {error!r}"
            else:
                outcome = "generated"
            os.write(write_end, outcome.encode())
            os._exit(0)

        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            outcome = pipe.read()
        os.waitpid(pid, 0)

        assert outcome == "refused same=True"
        assert parent.next_id() > 0
