from __future__ import annotations

import io
import sys
import unittest
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from scripts import third_party_suites as suites


def _sample_case() -> type[unittest.TestCase]:
    # Built in a function so that pytest does not collect it as a test of this module.
    class Sample(unittest.TestCase):
        def test_fails(self) -> None:
            self.fail("assumes the first row's key is 1")

        def test_passes(self) -> None:
            pass

        def test_other_failure(self) -> None:
            raise LookupError("not about keys")

    return Sample


def _failing_class_setup() -> type[unittest.TestCase]:
    class Setup(unittest.TestCase):
        @classmethod
        def setUpClass(cls) -> None:
            raise LookupError("setUpTestData saved author_id=1")

        def test_never_runs(self) -> None:
            pass

    return Setup


def _result_class(listed: Mapping[str, str]) -> type[suites.ExpectedFailuresResult]:
    class Result(suites.ExpectedFailuresResult):
        expected = listed

    return Result


def _failing_teardown() -> type[unittest.TestCase]:
    class Teardown(unittest.TestCase):
        def run(self, result: unittest.TestResult | None = None) -> unittest.TestResult | None:
            outcome = super().run(result)
            assert result is not None
            # As Django's TestCase reports a failing foreign-key check: after the test's success.
            result.addError(self, _exc_info(LookupError("author_id=1 points at no row")))
            result.addError(self, _exc_info(LookupError("and again")))
            return outcome

        def test_passes(self) -> None:
            pass

    return Teardown


def _run(
    expected: Mapping[str, str], *tests: unittest.TestCase
) -> tuple[suites.ExpectedFailuresResult, str]:
    stream = io.StringIO()
    runner = unittest.TextTestRunner(
        stream=stream, resultclass=_result_class(expected), verbosity=0
    )
    result = runner.run(unittest.TestSuite(tests))
    assert isinstance(result, suites.ExpectedFailuresResult)
    return result, stream.getvalue()


def _ids(outcomes: list[tuple[unittest.TestCase, str]]) -> list[str]:
    return [test.id() for test, _ in outcomes]


class TestExpectedFailuresResult:
    def test_a_listed_test_that_fails_is_an_expected_failure(self) -> None:
        test = _sample_case()("test_fails")

        result, output = _run({test.id(): "asserts pk == 1"}, test)

        assert result.wasSuccessful()
        assert _ids(result.expectedFailures) == [test.id()]
        assert result.failures == []
        assert f"expected failure: {test.id()}: asserts pk == 1\n" in output

    def test_a_listed_test_that_passes_fails_the_run(self) -> None:
        test = _sample_case()("test_passes")

        result, output = _run({test.id(): "asserts pk == 1"}, test)

        assert not result.wasSuccessful()
        assert _ids(result.errors) == [test.id()]
        assert "Listed as an expected failure, but it did not fail" in output

    def test_a_failure_not_listed_fails_the_run(self) -> None:
        listed = _sample_case()("test_fails")
        other = _sample_case()("test_other_failure")

        result, _ = _run({listed.id(): "asserts pk == 1"}, listed, other)

        assert not result.wasSuccessful()
        assert _ids(result.errors) == [other.id()]
        assert _ids(result.expectedFailures) == [listed.id()]

    def test_a_listed_id_that_no_test_has_fails_the_run(self) -> None:
        test = _sample_case()("test_passes")

        result, output = _run({"tests.renamed.Case.test_gone": "asserts pk == 1"}, test)

        assert not result.wasSuccessful()
        assert _ids(result.errors) == ["tests.renamed.Case.test_gone"]
        assert "ERROR: tests.renamed.Case.test_gone\n" in output

    def test_a_failing_class_setup_is_matched_by_the_id_unittest_gives_it(self) -> None:
        case = _failing_class_setup()
        class_id = f"setUpClass ({case.__module__}.{case.__qualname__})"

        result, _ = _run({class_id: "setUpTestData saves author_id=1"}, case("test_never_runs"))

        assert result.wasSuccessful()
        assert _ids(result.expectedFailures) == [class_id]

    def test_a_teardown_error_reported_after_success_is_one_expected_failure(self) -> None:
        # Django reports a failing foreign-key check at teardown after the test's success, and
        # a test can fail in its body and again at teardown.
        test = _failing_teardown()("test_passes")

        result, _ = _run({test.id(): "saves author_id=1"}, test)

        assert result.wasSuccessful()
        assert _ids(result.expectedFailures) == [test.id()]


def _exc_info(error: BaseException) -> Any:
    try:
        raise error
    except BaseException:
        return sys.exc_info()


def test_the_runner_takes_the_list_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(suites.EXPECTED_VARIABLE, '{"tests.a.B.test_c": "asserts pk == 1"}')

    resultclass = suites.ExpectedFailuresRunner().get_resultclass()

    assert issubclass(resultclass, suites.ExpectedFailuresResult)
    assert resultclass.expected == {"tests.a.B.test_c": "asserts pk == 1"}


@pytest.mark.parametrize("apps", [["django.contrib.auth"], ("django.contrib.auth",)])
def test_the_settings_block_keeps_installed_apps_a_list_or_a_tuple(apps: Any) -> None:
    # django-filter's tests add a tuple to its tuple of apps: a list there breaks an import.
    namespace: dict[str, Any] = {"INSTALLED_APPS": apps}

    exec(suites.SNOWFLAKE_SETTINGS, namespace)

    assert type(namespace["INSTALLED_APPS"]) is type(apps)
    assert list(namespace["INSTALLED_APPS"]) == ["django.contrib.auth", "django_flakeid"]
    assert namespace["DEFAULT_AUTO_FIELD"] == "django_flakeid.fields.SnowflakeAutoField"


class TestReplaceOnce:
    def test_replaces_the_one_occurrence(self, tmp_path: Path) -> None:
        path = tmp_path / "apps.py"
        path.write_text('class C:\n    default_auto_field = "x"\n')

        suites.replace_once(path, '    default_auto_field = "x"\n', "")

        assert path.read_text() == "class C:\n"

    @pytest.mark.parametrize("text", ["class C:\n", "a = 1\na = 1\n"])
    def test_refuses_a_file_that_moved_on(self, tmp_path: Path, text: str) -> None:
        path = tmp_path / "apps.py"
        path.write_text(text)

        with pytest.raises(RuntimeError, match="expected 'a = 1\\\\n' once"):
            suites.replace_once(path, "a = 1\n", "")

        assert path.read_text() == text
