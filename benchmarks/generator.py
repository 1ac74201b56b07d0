"""ID generation throughput: django-flakeid against its peers, in one process, same run.

Usage: python benchmarks/generator.py [--quick] [--csv PATH]

Contenders: django-flakeid; the ``flakeid`` 0.1.1 package, whose API django-flakeid offers; a
bare locked generator (one lock, one clock read, the arithmetic: the floor for a locked Python
generator); ``snowflake-id``; ``uuid.uuid4``; ``uuid-utils``' ``uuid7``; ``python-ulid``. Install
them with ``pip install -e ".[bench]"``; a peer that is missing is skipped, with a message.

Cases: one ID per call; one shared generator called from 4 threads; a million IDs at once
(``next_ids`` where a contender has a bulk API, a list comprehension of single calls where it
has none). A last case times django-flakeid's ``next_id()`` against the same method with its fork
page read taken out, which the README's figure for that read comes from. Every round runs each
contender of a case once, starting with a different one each round, so a noisy machine slows all
of them alike; the table gives median rates and the median of the per-round ratios, with their
quartiles. The garbage collector is paused while a contender runs, as ``timeit`` does. Results
go to ``benchmarks/results/generator.csv`` (``generator-quick.csv`` with ``--quick``), which
``benchmarks/plot.py`` reads.
"""

from __future__ import annotations

import argparse
import ast
import gc
import inspect
import statistics
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import MethodType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django_flakeid
from benchmarks.machine import RESULTS, describe, today, write_csv

OURS = f"django-flakeid {django_flakeid.__version__}"
THREADS = 4
PAGE_READ = "self._fast[0]"
# Not named "django-flakeid ...": plot.py takes such a row for the baseline of its case.
PAGE_READ_SKIPPED = "the same generator, page read skipped"

NextId = Callable[[], object]
NextIds = Callable[[int], Collection[object]]


class BareLockedGenerator:
    """The floor of what a locked Python generator costs: one lock, one clock read, arithmetic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = -1
        self._seq = 0

    def next_id(self) -> int:
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now == self._last:
                self._seq = (self._seq + 1) & 4095
                if self._seq == 0:
                    while now <= self._last:
                        now = time.time_ns() // 1_000_000
            else:
                self._seq = 0
            self._last = now
            return ((now - 1_577_836_800_000) << 22) | self._seq


@dataclass(frozen=True)
class Contender:
    """How to get IDs from one library. Factories give a fresh generator for every run."""

    name: str
    single: Callable[[], NextId]
    how: str
    #: For the threaded case, when the plain callable is not safe to share between threads.
    shared: Callable[[], NextId] | None = None
    shared_how: str = ""
    #: Returns None instead of an ID at times (and the caller must call again).
    returns_none: bool = False
    #: A real bulk API, for a layout preset; without one, the bulk case is a list
    #: comprehension of single calls.
    bulk: Callable[[str], NextIds] | None = None
    bulk_how: str = ""


@dataclass
class Row:
    case: str
    contender: str
    how: str
    ids_per_s: int
    ours_ids_per_s: int
    #: django-flakeid's rate divided by this contender's: above 1, django-flakeid is faster.
    ratio: float
    #: The quartiles of the per-round ratios, around the median in ``ratio``.
    ratio_q1: float | None
    ratio_q3: float | None
    target: float | None
    met: bool | None
    rounds: int
    count: int
    mode: str
    machine: str
    date: str


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def skipped(package: str, why: str) -> None:
    print(f"skipped {package}: {why} (pip install -e '.[bench]')", file=sys.stderr)


def ours(preset: str) -> django_flakeid.SnowflakeGenerator:
    return django_flakeid.make_generator(preset, machine_id=1)


def next_id_without_page_read() -> Callable[[django_flakeid.SnowflakeGenerator], NextId]:
    """django-flakeid's own ``next_id()``, compiled again from its source minus the page read.

    Rebuilt rather than copied, so that the comparison follows every change to the method; a
    change that moves the read out of its ``if`` stops the benchmark rather than time the wrong
    thing. Only for the benchmark: a generator without the read would serve a forked child.
    """
    method = django_flakeid.SnowflakeGenerator.next_id
    module = ast.parse(textwrap.dedent(inspect.getsource(method)))
    function = module.body[0]
    assert isinstance(function, ast.FunctionDef)
    reads = [
        i
        for i, node in enumerate(function.body)
        if isinstance(node, ast.If) and not node.orelse and ast.unparse(node.test) == PAGE_READ
    ]
    if len(reads) != 1:
        raise RuntimeError(
            f"next_id() no longer reads the fork page in one `if {PAGE_READ}:`; "
            f"update next_id_without_page_read() in {__file__}"
        )
    read = function.body[reads[0]]
    assert isinstance(read, ast.If)
    function.body[reads[0] : reads[0] + 1] = read.body
    compiled: dict[str, Any] = {}
    # The package module's own globals: the clock is a global there, and a lookup elsewhere
    # would cost a different amount.
    exec(compile(module, method.__code__.co_filename, "exec"), method.__globals__, compiled)
    without = compiled[method.__name__]
    return lambda generator: MethodType(without, generator)


def contenders() -> list[Contender]:
    found = [
        Contender(
            OURS,
            lambda: ours("twitter").next_id,
            "next_id()",
            bulk=lambda preset: ours(preset).next_ids,
            bulk_how="next_ids(n)",
        )
    ]
    try:
        import flakeid
    except ImportError:
        skipped("flakeid 0.1.1", "not installed")
    else:
        if package_version("flakeid") != "0.1.1":
            print(f"note: flakeid is {package_version('flakeid')}, not 0.1.1", file=sys.stderr)
        found.append(
            Contender(
                f"flakeid {package_version('flakeid')}",
                lambda: flakeid.make_generator("twitter", machine_id=1).next_id,
                "next_id()",
                bulk=lambda preset: flakeid.make_generator(preset, machine_id=1).next_ids,
                bulk_how="next_ids(n)",
            )
        )
    found.append(
        Contender("bare locked generator", lambda: BareLockedGenerator().next_id, "next_id()")
    )
    try:
        import snowflake
    except ImportError:
        skipped("snowflake-id", "not installed")
    else:
        found.append(
            Contender(
                f"snowflake-id {package_version('snowflake-id')}",
                lambda: snowflake.SnowflakeGenerator(1).__next__,
                "next(gen)",
                shared=lambda: locked(snowflake.SnowflakeGenerator(1).__next__),
                # It has no lock of its own: threads sharing one would repeat IDs.
                shared_how="next(gen) under the caller's lock",
                # Once a millisecond's 4,096 IDs are used up, rather than waiting.
                returns_none=True,
            )
        )
    found.append(
        Contender(f"uuid.uuid4 (Python {sys.version.split()[0]})", lambda: uuid.uuid4, "uuid4()")
    )
    try:
        import uuid_utils
    except ImportError:
        skipped("uuid-utils", "not installed")
    else:
        found.append(
            Contender(
                f"uuid-utils {package_version('uuid-utils')} uuid7",
                lambda: uuid_utils.uuid7,
                "uuid7()",
            )
        )
    try:
        import ulid
    except ImportError:
        skipped("python-ulid", "not installed")
    else:
        found.append(
            Contender(f"python-ulid {package_version('python-ulid')}", lambda: ulid.ULID, "ULID()")
        )
    return found


def locked(next_id: NextId) -> NextId:
    lock = threading.Lock()

    def call() -> object:
        with lock:
            return next_id()

    return call


def timed(run: Callable[[], float]) -> float:
    gc.collect()
    gc.disable()
    try:
        return run()
    finally:
        gc.enable()


def rate_single(next_id: NextId, n: int) -> float:
    # Every contender pays for the identity test, so that the calls of snowflake-id that
    # returned None rather than an ID are not counted as IDs.
    missed = 0
    start = time.perf_counter()
    for _ in range(n):
        if next_id() is None:
            missed += 1
    return (n - missed) / (time.perf_counter() - start)


def rate_threads(next_id: NextId, n: int) -> float:
    per_thread = n // THREADS
    barrier = threading.Barrier(THREADS + 1)
    missed = [0] * THREADS

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(per_thread):
            if next_id() is None:
                missed[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return (per_thread * THREADS - sum(missed)) / (time.perf_counter() - start)


def comprehension(next_id: NextId, returns_none: bool) -> NextIds:
    def next_ids(n: int) -> list[object]:
        return [next_id() for _ in range(n)]

    def next_ids_skipping_none(n: int) -> list[object]:
        ids = [uid for _ in range(n) if (uid := next_id()) is not None]
        while len(ids) < n:
            ids.extend(uid for _ in range(n - len(ids)) if (uid := next_id()) is not None)
        return ids

    return next_ids_skipping_none if returns_none else next_ids


def rate_bulk(next_ids: NextIds, n: int) -> float:
    start = time.perf_counter()
    ids = next_ids(n)
    elapsed = time.perf_counter() - start
    if len(ids) != n or len(set(ids)) != n:
        raise AssertionError(f"{next_ids!r} did not return {n:,} distinct IDs")
    return n / elapsed


@dataclass(frozen=True)
class Case:
    name: str
    count: int
    #: (contender, how, one measurement), django-flakeid first.
    runs: list[tuple[str, str, Callable[[], float]]]
    #: Targets for django-flakeid's ratio against some contenders.
    targets: dict[str, float]
    #: Also compare django-flakeid with the twitter layout's capacity.
    capacity: bool = False
    #: A difference of a few percent needs more rounds than the others to stand out of the noise.
    rounds_factor: int = 1


def measure(case: Case, rounds: int, mode: str, machine: str) -> list[Row]:
    rates: dict[str, list[float]] = {name: [] for name, _, _ in case.runs}
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in case.runs}
    for i in range(rounds):
        # A different contender goes first each round, so warm-up and drift favour none.
        shift = i % len(case.runs)
        this_round = {}
        for name, _, run in case.runs[shift:] + case.runs[:shift]:
            this_round[name] = timed(run)
            rates[name].append(this_round[name])
        for name, rate in this_round.items():
            ratios[name].append(this_round[OURS] / rate)
    ours_rate = round(statistics.median(rates[OURS]))
    rows = []
    for name, how, _ in case.runs:
        target = case.targets.get(name)
        ratio = round(statistics.median(ratios[name]), 2)
        q1, _, q3 = statistics.quantiles(ratios[name], method="inclusive")
        rows.append(
            Row(
                case.name,
                name,
                how,
                round(statistics.median(rates[name])),
                ours_rate,
                ratio,
                round(q1, 2),
                round(q3, 2),
                target,
                None if target is None else ratio >= target,
                rounds,
                case.count,
                mode,
                machine,
                today(),
            )
        )
    return rows


def build_cases(found: list[Contender], single_n: int, bulk_n: int) -> list[Case]:
    original = next((c.name for c in found if c.name.startswith("flakeid ")), "")
    single = Case(
        "next_id(), twitter",
        single_n,
        [(c.name, c.how, bind(rate_single, c.single, single_n)) for c in found],
        {original: 1.4, "bare locked generator": 0.9},
    )
    threads = Case(
        f"next_id(), {THREADS} threads, one generator",
        single_n,
        [
            (
                c.name,
                c.shared_how or c.how,
                bind(rate_threads, c.shared or c.single, single_n),
            )
            for c in found
        ],
        {original: 1.5},
    )
    bulk = Case(
        f"next_ids({bulk_n:,}), twitter",
        bulk_n,
        [
            (
                c.name,
                c.bulk_how or comprehension_how(c),
                bind_bulk(c, "twitter", bulk_n),
            )
            for c in found
        ],
        {original: 1.0},
        capacity=True,
    )
    # Only the contenders with layouts, and a bulk API, have a high_throughput preset.
    high_throughput = Case(
        f"next_ids({bulk_n:,}), high_throughput",
        bulk_n,
        [(c.name, c.bulk_how, bind_bulk(c, "high_throughput", bulk_n)) for c in found if c.bulk],
        {original: 10.0},
    )
    without = next_id_without_page_read()
    page_read = Case(
        "next_id(), twitter, with and without the fork page read",
        single_n,
        [
            (OURS, "next_id()", bind(rate_single, lambda: ours("twitter").next_id, single_n)),
            (
                PAGE_READ_SKIPPED,
                "next_id() rebuilt without the read",
                bind(rate_single, lambda: without(ours("twitter")), single_n),
            ),
        ],
        {},
        rounds_factor=3,
    )
    cases = [single, threads, bulk]
    if len(high_throughput.runs) > 1:
        cases.append(high_throughput)
    # Last, so that plot.py's four panels stay the comparison with the peers.
    return [*cases, page_read]


def comprehension_how(contender: Contender) -> str:
    how = f"[{contender.how} for _ in range(n)]"
    return f"{how}, None skipped" if contender.returns_none else how


def bind(
    rate: Callable[[NextId, int], float], make: Callable[[], NextId], n: int
) -> Callable[[], float]:
    return lambda: rate(make(), n)


def bind_bulk(contender: Contender, preset: str, n: int) -> Callable[[], float]:
    bulk = contender.bulk
    if bulk is not None:
        return lambda: rate_bulk(bulk(preset), n)
    return lambda: rate_bulk(comprehension(contender.single(), contender.returns_none), n)


def capacity_row(ours_row: Row) -> Row:
    capacity = ours("twitter").capacity().ids_per_sec_per_node
    ratio = ours_row.ids_per_s / capacity
    return Row(
        ours_row.case,
        "twitter layout capacity",
        "4,096 IDs per ms",
        capacity,
        ours_row.ids_per_s,
        round(ratio, 2),
        None,
        None,
        0.9,
        ratio >= 0.9,
        ours_row.rounds,
        ours_row.count,
        ours_row.mode,
        ours_row.machine,
        ours_row.date,
    )


def print_table(rows: list[Row]) -> None:
    header = f"  {'contender':38} {'how':44} {'IDs/s':>12} {'ours ÷ this (quartiles)':>24}  target"
    for case in dict.fromkeys(r.case for r in rows):
        case_rows = [r for r in rows if r.case == case]
        first = case_rows[0]
        print(f"\n{case}  ({first.count:,} IDs per run, median of {first.rounds} rounds)")
        print(header)
        for r in case_rows:
            target = ""
            if r.target is not None:
                target = f">= {r.target:g} {'ok' if r.met else 'MISSED'}"
            ratio = "" if r.contender == OURS else f"{r.ratio:.2f}"
            if r.contender != OURS and r.ratio_q1 is not None:
                ratio += f" ({r.ratio_q1:.2f}-{r.ratio_q3:.2f})"
            print(f"  {r.contender:38} {r.how:44} {r.ids_per_s:>12,} {ratio:>24}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller counts")
    parser.add_argument(
        "--csv",
        type=Path,
        help="where to write the results (default: benchmarks/results/generator.csv, "
        "or generator-quick.csv with --quick)",
    )
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    rounds = 3 if args.quick else 11
    single_n = 60_000 if args.quick else 300_000
    bulk_n = 200_000 if args.quick else 1_000_000
    machine = describe()
    print(f"{machine}; {mode} run")

    rows: list[Row] = []
    for case in build_cases(contenders(), single_n, bulk_n):
        case_rows = measure(case, rounds * case.rounds_factor, mode, machine)
        rows.extend(case_rows)
        if case.capacity:
            rows.append(capacity_row(case_rows[0]))
    print_table(rows)
    print(
        "\nours ÷ this: django-flakeid's IDs/s divided by the contender's (median of the "
        "per-round ratios); above 1, django-flakeid is faster. Against the page read "
        "skipped, 1 minus it is the read's share of a next_id() call."
    )

    path = args.csv or RESULTS / f"generator{'-quick' if args.quick else ''}.csv"
    write_csv(rows, path)


if __name__ == "__main__":
    main()
