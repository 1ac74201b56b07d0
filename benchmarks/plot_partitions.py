"""A chart of the partitioned-table benchmark: the ratios, and the space the tables take.

Usage: python benchmarks/plot_partitions.py [--results PATH] [--out PATH]

Reads ``benchmarks/results/partitions.json`` (written by ``benchmarks/partitions.py``), else
``partitions-quick.json``, and writes ``docs/partitions.png`` (needs matplotlib:
``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, NullFormatter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
DB_COLORS = {"postgresql": "#336791", "mariadb": "#c0765a"}
#: The sizes drawn for each table, with their shade: a table loses a month's space only where
#: its bar shrinks.
STATES = {
    "before": 1.0,
    "after retention": 0.6,
    "after rebuild": 0.3,
}
TABLE_LABELS = {"bench_partitioned": "partitioned", "bench_plain": "plain table"}


def ratio_label(value: float) -> str:
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def plot_ratios(ax: Axes, databases: list[dict[str, Any]]) -> None:
    names = [m["name"] for m in databases[0]["measurements"]] + ["disk after retention (files)"]
    width = 0.8 / len(databases)
    for d, result in enumerate(databases):
        ratios = [m["ratio"] for m in result["measurements"]]
        disk = result["disk"]
        after = "after retention"
        ratios.append(
            disk["bench_plain"][after]["file_bytes"]
            / disk["bench_partitioned"][after]["file_bytes"]
        )
        for i, value in enumerate(ratios):
            x = i + (d - (len(databases) - 1) / 2) * width
            ax.bar(x, value, width, color=DB_COLORS[result["db"]])
            ax.text(x, value, ratio_label(value), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), [name.replace(" ", "\n", 1) for name in names])
    ax.set_ylabel("plain table ÷ partitioned (log scale; above 1, partitioning wins)")
    ax.set_title("How many times better the partitioned table does", fontsize=10)
    ax.legend(
        handles=[
            Patch(color=DB_COLORS[r["db"]], label=f"{r['db_version']}, {r['rows']:,} rows")
            for r in databases
        ],
        fontsize=8,
        loc="upper left",
    )
    ax.margins(y=0.15)


def plot_disk(ax: Axes, result: dict[str, Any]) -> None:
    color = DB_COLORS[result["db"]]
    width = 0.8 / len(STATES)
    for g, table in enumerate(TABLE_LABELS):
        sizes = result["disk"][table]
        for s, (state, alpha) in enumerate(STATES.items()):
            if state not in sizes:
                continue
            x = g + (s - (len(STATES) - 1) / 2) * width
            value = sizes[state]["file_bytes"] / 1e6
            ax.bar(x, value, width, color=color, alpha=alpha)
            ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
            # InnoDB's files hold more than its data: grown in steps, freed pages kept.
            data = sizes[state]["data_bytes"] / 1e6
            if data != value:
                ax.hlines(data, x - width / 2, x + width / 2, color="black", linewidth=1.5)
    ax.set_xticks(range(len(TABLE_LABELS)), list(TABLE_LABELS.values()))
    ax.set_ylabel("MB on disk (files of the table, its indexes, its partitions)")
    ax.set_title(
        f"{result['db_version']}, {result['rows']:,} rows: disk\n"
        f"before and after dropping {result['dropped_months']} months, and after\n"
        f"the plain table's rebuild ({result['rebuild'].split(' (')[0]}, "
        f"{result['rebuild_seconds']:.1f} s)",
        fontsize=10,
    )
    handles: list[Patch | Line2D] = [
        Patch(color=color, alpha=alpha, label=state) for state, alpha in STATES.items()
    ]
    if any(
        size["data_bytes"] != size["file_bytes"]
        for sizes in result["disk"].values()
        for size in sizes.values()
    ):
        handles.append(Line2D([], [], color="black", label="data + indexes"))
    ax.legend(
        handles=handles,
        fontsize=8,
        loc="upper center",
        ncols=2,
    )
    ax.margins(y=0.25)


def plot(report: dict[str, Any], path: Path) -> None:
    """Draw ``report``, the JSON ``benchmarks/partitions.py`` writes, into the PNG ``path``."""
    databases = report["databases"]
    figure, axes = plt.subplots(
        1,
        1 + len(databases),
        figsize=(6 + 4.5 * len(databases), 7),
        gridspec_kw={"width_ratios": [1.6] + [1] * len(databases)},
        squeeze=False,
    )
    plot_ratios(axes[0][0], databases)
    for ax, result in zip(axes[0][1:], databases, strict=True):
        plot_disk(ax, result)
    figure.suptitle(
        "Monthly partitions cut from the Snowflake key against one table, same rows, same run",
        fontsize=13,
    )
    text = (
        f"python benchmarks/partitions.py; {report['rounds']} last-hour queries, "
        f"{report['report_rounds']} one-month reports and {report['drop_months']} months dropped "
        f"per table, medians of per-round ratios. Measured {report['date']} on "
        f"{report['machine']}."
    )
    if report["mode"] == "quick":
        text += " QUICK SMOKE RUN: not for publishing."
    figure.text(0.01, 0.005, text, fontsize=8, color="#444444", ha="left", va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.03, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="the JSON file (benchmarks/results/)")
    parser.add_argument(
        "--out", type=Path, default=DOCS / "partitions.png", help="the PNG (docs/partitions.png)"
    )
    args = parser.parse_args()
    candidates = (
        [args.results]
        if args.results
        else [
            RESULTS / "partitions.json",
            RESULTS / "partitions-quick.json",
        ]
    )
    for path in candidates:
        if path.exists():
            print(f"from {path}")
            plot(json.loads(path.read_text()), args.out)
            return
    sys.exit("no results: run python benchmarks/partitions.py first")


if __name__ == "__main__":
    main()
