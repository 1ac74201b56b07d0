"""Generator throughput against the ``flakeid`` 0.1.1 package and a bare locked generator.

Usage: python benchmarks/generator.py [--quick] [--csv PATH]

Needs ``pip install flakeid==0.1.1`` for the comparison. Each case runs the contenders in
alternation, several rounds, and reports the median of the per-round ratios, so that a noisy
machine slows both sides of a pair alike.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django_flakeid

try:
    import flakeid as seed
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("install the comparison package first: pip install flakeid==0.1.1")


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


@dataclass
class Row:
    case: str
    baseline: str
    ours_ids_per_s: int
    baseline_ids_per_s: int
    ratio: float
    target: float


def rate_single(next_id: Callable[[], int], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        next_id()
    return n / (time.perf_counter() - start)


def rate_threads(next_id: Callable[[], int], n: int, threads: int = 4) -> float:
    per_thread = n // threads
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            next_id()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - start)


def rate_bulk(next_ids: Callable[[int], list[int]], n: int) -> float:
    start = time.perf_counter()
    ids = next_ids(n)
    elapsed = time.perf_counter() - start
    assert len(set(ids)) == n
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller counts")
    parser.add_argument("--csv", type=Path, help="also write the table to this CSV file")
    args = parser.parse_args()
    rounds = 5 if args.quick else 11
    single_n = 100_000 if args.quick else 300_000
    bulk_n = 1_000_000

    def ours(preset: str) -> django_flakeid.SnowflakeGenerator:
        return django_flakeid.make_generator(preset, machine_id=1)

    def theirs(preset: str) -> seed.SnowflakeGenerator:
        return seed.make_generator(preset, machine_id=1)

    bare = BareLockedGenerator()
    cases: list[tuple[str, str, Callable[[], float], Callable[[], float], float]] = [
        (
            "next_id twitter",
            "flakeid 0.1.1",
            lambda: rate_single(ours("twitter").next_id, single_n),
            lambda: rate_single(theirs("twitter").next_id, single_n),
            1.4,
        ),
        (
            "next_id twitter",
            "bare locked generator",
            lambda: rate_single(ours("twitter").next_id, single_n),
            lambda: rate_single(bare.next_id, single_n),
            0.9,
        ),
        (
            "next_id, 4 threads, one generator",
            "flakeid 0.1.1",
            lambda: rate_threads(ours("twitter").next_id, single_n),
            lambda: rate_threads(theirs("twitter").next_id, single_n),
            1.5,
        ),
        (
            "next_ids(1,000,000) twitter",
            "flakeid 0.1.1",
            lambda: rate_bulk(ours("twitter").next_ids, bulk_n),
            lambda: rate_bulk(theirs("twitter").next_ids, bulk_n),
            1.0,
        ),
        (
            "next_ids(1,000,000) high_throughput",
            "flakeid 0.1.1",
            lambda: rate_bulk(ours("high_throughput").next_ids, bulk_n),
            lambda: rate_bulk(theirs("high_throughput").next_ids, bulk_n),
            10.0,
        ),
    ]
    rows: list[Row] = []
    for name, baseline, run_ours, run_theirs, target in cases:
        ours_rates, their_rates, ratios = [], [], []
        for i in range(rounds):
            # Alternate which side goes first so warm-up and drift favour neither.
            if i % 2:
                b, a = run_theirs(), run_ours()
            else:
                a, b = run_ours(), run_theirs()
            ours_rates.append(a)
            their_rates.append(b)
            ratios.append(a / b)
        rows.append(
            Row(
                name,
                baseline,
                round(statistics.median(ours_rates)),
                round(statistics.median(their_rates)),
                round(statistics.median(ratios), 2),
                target,
            )
        )
    capacity = django_flakeid.make_generator("twitter").capacity().ids_per_sec_per_node
    bulk = next(r for r in rows if r.case == "next_ids(1,000,000) twitter")
    rows.append(
        Row(
            bulk.case,
            "layout capacity 4,096,000/s",
            bulk.ours_ids_per_s,
            capacity,
            round(bulk.ours_ids_per_s / capacity, 2),
            0.9,
        )
    )
    header = (
        f"{'case':38} {'compared with':28} {'ours/s':>12} {'theirs/s':>12} {'ratio':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "ok" if r.ratio >= r.target else "MISSED"
        print(
            f"{r.case:38} {r.baseline:28} {r.ours_ids_per_s:>12,} "
            f"{r.baseline_ids_per_s:>12,} {r.ratio:>6.2f}  >= {r.target} {verdict}"
        )
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(Row)])
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)


if __name__ == "__main__":
    main()
