"""The `course` command: every subcommand documents itself; unfinished ones fail in one clear line."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from course_lib.cli import main
from course_lib.launch import lab_argv

SUBCOMMANDS = ["lab", "check", "release", "grade", "report", "slides", "site", "bench"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Usage: main " + name in result.output


def test_course_command_is_installed_as_a_console_script():
    course = Path(sys.executable).parent / "course"
    result = subprocess.run([str(course), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Rectified" in result.stdout


def test_lab_adds_allow_root_only_for_the_root_user(tmp_path):
    assert "--allow-root" in lab_argv(root=tmp_path, is_root_user=True)
    assert "--allow-root" not in lab_argv(root=tmp_path, is_root_user=False)


def test_lab_opens_the_first_notebook_and_passes_extra_arguments(course_root):
    argv = lab_argv(("--no-browser",), root=course_root, is_root_user=False)
    assert argv[3] == "notebooks/00_welcome.ipynb"
    assert argv[-1] == "--no-browser"


def test_bench_lists_the_benchmarks_and_rejects_an_unknown_one():
    listed = CliRunner().invoke(main, ["bench", "--list"])
    assert listed.exit_code == 0 and "kernel_threads" in listed.output
    unknown = CliRunner().invoke(main, ["bench", "nope"])
    assert unknown.exit_code == 1 and "no benchmark 'nope'; available:" in unknown.output


@pytest.mark.parametrize("argv", [["release", "nope"], ["check", "nope"], ["grade", "nope"], ["report", "nope"],
                                  ["slides", "nope.ipynb"]])
def test_a_bad_name_exits_nonzero_with_one_error_line_and_no_traceback(argv):
    result = subprocess.run([sys.executable, "-m", "course_lib.cli", *argv], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error: ") and result.stderr.strip().count("\n") == 0


def _course_errors() -> list[type]:
    """Every error class course_lib raises for its user: each must derive from CourseError."""
    from course_lib.grading.authoring.sources import SourceError
    from course_lib.grading.grade.cluster import ClusterUnusable
    from course_lib.grading.grade.gradebook import GradebookUnreachable
    from course_lib.grading.grade.intake import IntakeError
    from course_lib.grading.grade.plan import UndecidableCheck
    from course_lib.grading.grade.run import CannotGrade
    from course_lib.grading.sandbox.slots import NoFreeSlot
    from course_lib.report.results import ReportError
    from course_lib.site import SiteError
    from course_lib.slides import UnknownNotebook

    return [CannotGrade, ClusterUnusable, UndecidableCheck, GradebookUnreachable, IntakeError, NoFreeSlot, ReportError,
            SourceError, SiteError, UnknownNotebook]


@pytest.mark.parametrize("error", _course_errors(), ids=lambda e: e.__name__)
def test_any_course_error_a_command_raises_is_one_error_line(error, monkeypatch):
    """NoFreeSlot, for one, used to reach the user as a traceback: the CLI now catches the one base."""
    from course_lib.errors import CourseError
    from course_lib.grading.authoring import release

    assert issubclass(error, CourseError)

    def fails(names):
        raise error(f"{error.__name__}: what went wrong, and what to do")
    monkeypatch.setattr(release, "release", fails)
    result = CliRunner().invoke(main, ["release", "ex01_activations"])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit
    assert result.output == f"Error: {error.__name__}: what went wrong, and what to do\n"


@pytest.mark.sandbox  # `course grade` stops first where the sandbox cannot run
def test_course_grade_gives_each_cell_nbgrader_configs_timeout(monkeypatch):
    """One per-cell timeout: nbgrader_config.py's Execute.timeout, for plain nbgrader and `course grade` alike."""
    from course_lib.grading.grade import run as run_module
    from course_lib.grading.nbgrader_api import course_config

    seen = []
    monkeypatch.setattr(run_module, "grade", lambda *args, **kwargs: seen.append(args[3]) or [])
    result = CliRunner().invoke(main, ["grade", "ex01_activations"])
    assert result.exit_code == 0, result.output
    assert seen[0].cell_timeout_s == course_config().Execute.timeout == 120
