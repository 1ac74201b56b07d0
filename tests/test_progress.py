from __future__ import annotations

from django_flakeid.progress import Progress, ProgressDisplay


class TestProgress:
    def test_rate_and_eta(self) -> None:
        progress = Progress(done=40_000, total=100_000, elapsed=2.0)

        assert progress.rate == 20_000
        assert progress.eta == 3.0
        assert progress.describe() == "40,000/100,000 rows (40%), 20,000 rows/s, ETA 0:00:03"

    def test_before_any_time_has_passed(self) -> None:
        progress = Progress(done=0, total=10, elapsed=0.0)

        assert progress.rate == 0
        assert progress.eta is None
        assert progress.describe() == "0/10 rows (0%), 0 rows/s, ETA ?"

    def test_done(self) -> None:
        assert Progress(done=7, total=7, elapsed=0.0).eta == 0
        assert Progress(done=0, total=0, elapsed=1.0).describe() == (
            "0/0 rows (100%), 0 rows/s, ETA 0:00:00"
        )

    def test_long_eta(self) -> None:
        assert (
            Progress(done=1, total=100_000, elapsed=1.0).describe().endswith("ETA 1 day, 3:46:39")
        )


def record(*, tty: bool, **options: float) -> tuple[ProgressDisplay, list[str]]:
    written: list[str] = []
    return ProgressDisplay(written.append, tty=tty, width=10, **options), written


class TestTerminal:
    def test_redraws_one_line(self) -> None:
        display, written = record(tty=True)

        display.update(Progress(0, 4, 0.0))
        display.update(Progress(1, 4, 0.5))
        display.update(Progress(4, 4, 1.0))
        display.close()

        assert written == [
            "\r[----------] 0/4 rows (0%), 0 rows/s, ETA ?\033[K",
            "\r[##--------] 1/4 rows (25%), 2 rows/s, ETA 0:00:02\033[K",
            "\r[##########] 4/4 rows (100%), 4 rows/s, ETA 0:00:00\033[K",
            "\n",
        ]

    def test_at_most_ten_redraws_a_second_but_always_the_last(self) -> None:
        display, written = record(tty=True)

        for done in range(1, 301):
            display.update(Progress(done, 300, done / 1000))

        shown = [line.split("] ")[1].split(" rows")[0] for line in written]
        assert shown == ["1/300", "101/300", "201/300", "300/300"]

    def test_close_without_a_bar_writes_nothing(self) -> None:
        display, written = record(tty=True)

        display.close()

        assert written == []


class TestLog:
    def test_plain_lines_every_few_seconds(self) -> None:
        display, written = record(tty=False, every=5.0)

        for second in range(13):
            display.update(Progress(second, 12, float(second)))
        display.close()

        assert written == [
            "1/12 rows (8%), 1 rows/s, ETA 0:00:11\n",
            "6/12 rows (50%), 1 rows/s, ETA 0:00:06\n",
            "11/12 rows (91%), 1 rows/s, ETA 0:00:01\n",
            "12/12 rows (100%), 1 rows/s, ETA 0:00:00\n",
        ]

    def test_nothing_before_the_first_row(self) -> None:
        display, written = record(tty=False)

        display.update(Progress(0, 5, 0.0))

        assert written == []
