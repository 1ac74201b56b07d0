from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import pytest
from django.test import override_settings

from django_flakeid import conf, hostclaim
from django_flakeid.conf import ProblemKind, Sourced
from django_flakeid.errors import ConfigurationError, NodeInUseError
from django_flakeid.generator import SnowflakeGenerator
from django_flakeid.identity import FIXED_NODE_FIX
from django_flakeid.layout import DEFAULT_EPOCH_MS, Layout
from django_flakeid.presets import PRESET_TWITTER

ROOT = Path(__file__).resolve().parent.parent

needs_flock = pytest.mark.skipif(not hasattr(os, "fork"), reason="node claims use POSIX flock")


def kinds(setting: Any) -> list[ProblemKind]:
    with override_settings(FLAKEID=setting):
        config, problems = conf.validate()
    assert config is None
    return [problem.kind for problem in problems]


def set_hostname(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr("django_flakeid.settings_reader.socket.gethostname", lambda: name)


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock folder of the test's own, shared with the processes it starts."""
    monkeypatch.setenv(hostclaim.LOCK_DIR_ENV, str(tmp_path))
    return tmp_path


@contextmanager
def held_elsewhere(datacenter_id: int, machine_id: int) -> Iterator[subprocess.Popen[str]]:
    """Another process of this host holds the twitter-layout node while the block runs."""
    script = textwrap.dedent(
        f"""
        import sys
        from django_flakeid import hostclaim
        from django_flakeid.layout import Layout
        hostclaim.claim_node(Layout(), {datacenter_id}, {machine_id})
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        yield holder
    finally:
        holder.communicate("", timeout=30)


def free_elsewhere(datacenter_id: int, machine_id: int) -> bool:
    """Whether another process of this host could claim the twitter-layout node right now."""
    code = (
        "from django_flakeid import hostclaim; from django_flakeid.layout import Layout; "
        f"print(hostclaim.try_claim(Layout(), {datacenter_id}, {machine_id}) is not None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.stdout in ("True\n", "False\n")
    return result.stdout == "True\n"


def in_child(work: Callable[[], str]) -> str:
    """What ``work`` returns when run in a forked child of this process."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which coverage does not follow
        try:
            os.close(read_end)
            # A child stuck on a lock must not hang the run: the alarm kills it, and the
            # parent then sees an empty report and a failed exit.
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(10)
            try:
                outcome = work()
            except BaseException as error:
                outcome = f"unexpected {error!r}"
            os.write(write_end, outcome.encode())
        finally:
            # Never return into pytest in the child.
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        outcome = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return outcome


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
        assert config.node.machine_mode == "fixed"
        assert config.epoch_ms == Sourced("epoch_ms", DEFAULT_EPOCH_MS, "default")
        assert config.preset_name == "twitter"
        assert (config.lease_ttl, config.lease_database) == (30.0, "default")

    def test_absent_setting_means_twitter_and_an_auto_machine(self, settings: Any) -> None:
        del settings.FLAKEID

        config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.layout == Layout()
        assert config.node.datacenter_id == Sourced("datacenter_id", 0, "default")
        assert config.node.machine_id == Sourced("machine_id", "auto", "default")
        assert config.node.machine_mode == "auto"
        assert {config.node.datacenter_id.source, config.node.machine_id.source} == {"default"}
        assert (config.lease_ttl, config.lease_database) == (30.0, "default")

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
        assert {config.node.datacenter_id.source, config.node.machine_id.source} != {"default"}

    def test_none_counts_as_absent(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "5")
        setting = {
            "preset": None,
            "machine_id": None,
            "epoch_ms": None,
            "sequence_bits": None,
            "lease_ttl": None,
            "lease_database": None,
        }

        with override_settings(FLAKEID=setting):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.layout == Layout()
        assert config.node.machine_id.source == "environment"
        assert (config.lease_ttl, config.lease_database) == (30.0, "default")

    def test_one_explicit_id_is_an_explicit_identity(self) -> None:
        with override_settings(FLAKEID={"machine_id": 0}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.node.datacenter_id.source == "default"
        assert {config.node.datacenter_id.source, config.node.machine_id.source} != {"default"}

    @pytest.mark.parametrize("word", ["auto", "lease"])
    def test_machine_word_in_the_setting(self, word: str) -> None:
        with override_settings(FLAKEID={"machine_id": word}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.node.machine_id == Sourced(
            "machine_id", word, "setting", "FLAKEID['machine_id']"
        )
        assert config.node.machine_mode == word
        assert {config.node.datacenter_id.source, config.node.machine_id.source} != {"default"}

    @pytest.mark.parametrize("word", ["auto", "lease"])
    def test_machine_word_in_the_environment(
        self, word: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", f" {word}\n")

        with override_settings(FLAKEID={}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.node.machine_id == Sourced(
            "machine_id", word, "environment", "FLAKEID_MACHINE_ID"
        )
        assert config.node.machine_mode == word

    def test_setting_word_wins_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "auto")

        with override_settings(FLAKEID={"machine_id": "lease"}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.node.machine_id.value == "lease"

    @pytest.mark.parametrize(
        ("host", "number"), [("web-3", 3), ("db12", 12), ("web-0", 0), ("node-07", 7)]
    )
    def test_machine_from_the_hostname(
        self, host: str, number: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        set_hostname(monkeypatch, host)

        with override_settings(FLAKEID={"machine_id": "hostname"}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.node.machine_id == Sourced(
            "machine_id", number, "setting", f"FLAKEID['machine_id'] = 'hostname' ({host})"
        )
        assert config.node.machine_mode == "fixed"

    def test_datacenter_from_the_hostname_in_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        set_hostname(monkeypatch, "db12")
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "hostname")

        with override_settings(FLAKEID={"machine_id": "auto"}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.node.datacenter_id == Sourced(
            "datacenter_id", 12, "environment", "FLAKEID_DATACENTER_ID = 'hostname' (db12)"
        )
        assert config.node.datacenter_id.describe() == (
            "environment FLAKEID_DATACENTER_ID = 'hostname' (db12)"
        )

    def test_hostname_without_a_number(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web")

        with override_settings(FLAKEID={"machine_id": "hostname"}):
            config, problems = conf.validate()

        assert config is None
        assert [problem.kind for problem in problems] == ["hostname_no_number"]
        assert "'web'" in problems[0].message

    def test_hostname_out_of_range(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web-40")

        assert kinds({"machine_id": "hostname"}) == ["node_out_of_range"]
        assert kinds({"datacenter_id": "hostname", "machine_id": 1}) == ["node_out_of_range"]

    @pytest.mark.parametrize("ttl", [3, 4.5, 45, 86_400])
    def test_lease_ttl(self, ttl: float) -> None:
        with override_settings(FLAKEID={"lease_ttl": ttl}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None
        assert config.lease_ttl == ttl
        assert type(config.lease_ttl) is float

    def test_lease_database(self) -> None:
        with override_settings(FLAKEID={"lease_database": "default"}):
            config, _problems = conf.validate()

        assert config is not None
        assert config.lease_database == "default"

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
        setting = {
            "machine_idd": 1,
            "timestamp_bits": "41",
            "datacenter_id": 1.5,
            "lease_ttl": 0,
            "lease_database": "replica",
        }

        assert kinds(setting) == [
            "unknown_key",
            "width_not_int",
            "environment_not_int",
            "node_not_int",
            "lease_ttl_invalid",
            "lease_database_unknown",
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
            ({"epoch_ms": "auto"}, ["epoch_not_int"]),
            ({"machine_id": True}, ["node_not_int"]),
            ({"machine_id": "Auto"}, ["node_not_int"]),
            ({"datacenter_id": "auto"}, ["node_not_int"]),
            ({"datacenter_id": "lease"}, ["node_not_int"]),
            ({"machine_id": 32}, ["node_out_of_range"]),
            ({"preset": "minimal", "datacenter_id": 1}, ["node_out_of_range"]),
            ({"lease_ttl": 0}, ["lease_ttl_invalid"]),
            ({"lease_ttl": -1}, ["lease_ttl_invalid"]),
            ({"lease_ttl": "30"}, ["lease_ttl_invalid"]),
            ({"lease_ttl": True}, ["lease_ttl_invalid"]),
            ({"lease_ttl": math.nan}, ["lease_ttl_invalid"]),
            ({"lease_ttl": 2.9}, ["lease_ttl_too_short"]),
            ({"lease_ttl": 1e-3}, ["lease_ttl_too_short"]),
            ({"lease_database": "nope"}, ["lease_database_unknown"]),
            ({"lease_database": ["default"]}, ["lease_database_unknown"]),
            ({"lease_database": {"default": 1}}, ["lease_database_unknown"]),
        ],
    )
    def test_kinds(self, setting: dict[str, Any], expected: list[str]) -> None:
        assert kinds(setting) == expected

    def test_datacenter_environment_takes_no_machine_word(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "lease")

        assert kinds({}) == ["environment_not_int"]

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
        set_hostname(monkeypatch, "web")
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
            *kinds({"machine_id": "hostname"}),
            *kinds({"lease_ttl": 0, "lease_database": "nope"}),
            *kinds({"lease_ttl": 1}),
            *kinds({"datacenter_id": 31, "machine_id": 31}),
            *kinds({"ids_as_strings": "yes"}),
        }
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "x")
        produced.update(kinds({}))

        assert produced == set(get_args(ProblemKind))


@pytest.mark.usefixtures("lock_dir")
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

    @needs_flock
    def test_override_settings_rebuilds(self) -> None:
        before = conf.get_generator()

        with override_settings(FLAKEID={"machine_id": 30, "datacenter_id": 2}):
            inside = conf.get_generator()
            assert (inside.datacenter_id, inside.machine_id) == (2, 30)
            # The node the setting no longer names is given back.
            assert free_elsewhere(1, 7)

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

    def test_hostname_machine(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web-3")

        with override_settings(FLAKEID={"datacenter_id": 1, "machine_id": "hostname"}):
            generator = conf.get_generator()
            decoded = generator.decode(generator.next_id())

        assert (decoded.datacenter_id, decoded.machine_id) == (1, 3)

    @needs_flock
    def test_get_config_claims_nothing(self) -> None:
        assert conf.get_config().node.machine_id.value == 7

        assert free_elsewhere(1, 7)

    @needs_flock
    def test_default_machine_is_claimed_automatically(self, settings: Any) -> None:
        del settings.FLAKEID

        generator = conf.get_generator()

        assert (generator.datacenter_id, generator.machine_id) == (0, 0)
        assert not free_elsewhere(0, 0)

    @needs_flock
    def test_auto_skips_a_machine_another_process_holds(self, settings: Any) -> None:
        del settings.FLAKEID

        with held_elsewhere(0, 0):
            generator = conf.get_generator()

            decoded = generator.decode(generator.next_id())
            assert (decoded.datacenter_id, decoded.machine_id) == (0, 1)
            assert not free_elsewhere(0, 1)

    @needs_flock
    def test_fixed_machine_another_process_holds(self) -> None:
        with held_elsewhere(1, 7) as holder:
            for _attempt in range(2):
                with pytest.raises(NodeInUseError) as excinfo:
                    conf.get_generator()

                message = str(excinfo.value)
                assert message.startswith(
                    f"datacenter_id=1 machine_id=7 is already generating IDs on this host in "
                    f"pid {holder.pid} "
                )
                assert message.endswith(FIXED_NODE_FIX)

        # The refusal was not kept: with the holder gone, the node is ours.
        generator = conf.get_generator()
        assert generator.decode(generator.next_id()).machine_id == 7
        assert not free_elsewhere(1, 7)

    @needs_flock
    def test_clear_cache_releases_the_claim(self) -> None:
        before = conf.get_generator()
        assert not free_elsewhere(1, 7)

        conf.clear_cache()

        assert free_elsewhere(1, 7)
        assert conf.get_generator() is not before
        assert not free_elsewhere(1, 7)

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
    def test_child_of_a_fixed_machine_is_refused(self) -> None:
        parent = conf.get_generator()
        parent.next_id()

        def work() -> str:  # pragma: no cover - runs in the child
            try:
                conf.get_generator()
            except NodeInUseError as error:
                return f"refused: {error}"
            return "generated"

        outcome = in_child(work)

        assert outcome.startswith(
            "refused: datacenter_id=1 machine_id=7 is already generating IDs on this host in "
            f"pid {os.getpid()} "
        )
        # The child's exit gave back nothing of the parent's.
        assert parent.next_id() > 0
        assert conf.get_generator() is parent
        assert not free_elsewhere(1, 7)

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
    def test_child_of_an_auto_machine_claims_another(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 2, "machine_id": "auto"}):
            parent = conf.get_generator()

            def work() -> str:  # pragma: no cover - runs in the child
                generator = conf.get_generator()
                decoded = generator.decode(generator.next_id())
                same = generator is parent
                return f"same={same} node={decoded.datacenter_id},{decoded.machine_id}"

            outcome = in_child(work)

            assert (parent.datacenter_id, parent.machine_id) == (2, 0)
            assert outcome == "same=False node=2,1"
            assert parent.next_id() > 0


@pytest.mark.usefixtures("lock_dir")
class TestBackfillNode:
    def test_a_fixed_backfill_node_is_invalid(self) -> None:
        with (
            override_settings(FLAKEID={"datacenter_id": 31, "machine_id": 31}),
            pytest.raises(ConfigurationError) as caught,
        ):
            conf.get_generator()

        assert str(caught.value) == (
            "Invalid FLAKEID: datacenter_id 31 with machine_id 31 is the node set aside for "
            "backfilled IDs; no live process may generate IDs with it. Run 'manage.py check' "
            "for details."
        )

    @needs_flock
    def test_auto_gives_it_back_when_every_other_machine_is_taken(self) -> None:
        layout = Layout()
        others = [hostclaim.claim_node(layout, 31, machine) for machine in range(31)]
        try:
            with override_settings(FLAKEID={"datacenter_id": 31, "machine_id": "auto"}):
                with pytest.raises(NodeInUseError) as caught:
                    conf.get_generator()

                assert str(caught.value) == (
                    "every machine ID of datacenter 31 is in use except 31, which is set aside "
                    "for backfilled IDs; run fewer processes, use another datacenter_id, or a "
                    "layout with more machine_bits"
                )
                # Given back: it can be claimed, as backfill does.
                reserved = hostclaim.try_claim(layout, 31, 31)
                assert reserved is not None
                reserved.release()
                others.pop().release()
                generator = conf.get_generator()
                assert (generator.datacenter_id, generator.machine_id) == (31, 30)
        finally:
            for claim in others:
                claim.release()

    @pytest.mark.usefixtures("lease_table")
    def test_a_lease_on_it_is_given_back(self) -> None:
        from django_flakeid import leases
        from django_flakeid.models import NodeLease

        widths = {"timestamp_bits": 41, "datacenter_bits": 1, "machine_bits": 1}
        layout = Layout(**widths, sequence_bits=20)
        first = leases.acquire(layout, 1, ttl_seconds=30)
        setting = {**widths, "sequence_bits": 20, "datacenter_id": 1, "machine_id": "lease"}
        try:
            with override_settings(FLAKEID=setting), pytest.raises(NodeInUseError):
                conf.get_generator()

            assert first.machine_id == 0
            assert NodeLease.objects.get(datacenter_id=1, machine_id=1).holder == ""
        finally:
            first.release()
