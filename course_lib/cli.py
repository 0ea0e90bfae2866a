"""The `course` command: a thin dispatcher to the rest of course_lib.

Every subcommand has --help; a failure (a bad source, a missing tool, an unknown name: any CourseError)
exits with status 1 and one line starting with "Error:", never a traceback.
"""

import importlib

import click

from course_lib import benches
from course_lib.errors import CourseError


class _Course(click.Group):
    """The `course` group: whatever CourseError a command raises becomes its one "Error:" line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CourseError as err:
            raise click.ClickException(str(err)) from None


def _require_extra(extra: str, what: str, modules: tuple[str, ...]) -> None:
    """One line naming the extra (pyproject.toml) to install when `what` needs a package that is not installed."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(module)
    if missing:
        raise click.ClickException(f"{what} needs the {extra} extra, which is not installed (no {', '.join(missing)}): "
                                   f"make install EXTRAS={extra}, or pip install -e '.[{extra}]'")


@click.group(cls=_Course, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rectified")
def main() -> None:
    """Rectified: run, check, release, grade and present the activation-functions course."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
def lab(jupyter_args: tuple[str, ...]) -> None:
    """Open JupyterLab on the first notebook (extra arguments go to jupyter lab, e.g. --no-browser)."""
    from course_lib.launch import run_lab

    run_lab(jupyter_args)


def _assignments(names: tuple[str, ...]) -> list[str]:
    from course_lib.grading.authoring.sources import assignments

    known = assignments()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.ClickException(f"no assignment {', '.join(unknown)} in solutions/; known: {', '.join(known)}")
    return list(names) or known


@main.command()
@click.argument("assignments", nargs=-1)
@click.option("--workers", type=int, help="Parallel autograders (default: the number of cores).")
def check(assignments: tuple[str, ...], workers: int | None) -> None:
    """Instructor CI: release, autograde solution, blank and mutants for each assignment (default: all)."""
    from course_lib.grading.authoring.mutation import format_table, mutation_test

    results = [mutation_test(a, workers) for a in _assignments(assignments)]
    click.echo(format_table(results))
    if not all(r.ok for r in results):
        raise click.ClickException("an assignment's solution lost points, its blank scored, or a mutant survived")


@main.command()
@click.argument("assignments", nargs=-1)
def release(assignments: tuple[str, ...]) -> None:
    """Generate exercises/<assignment>/ from solutions/<assignment>/ with nbgrader (default: all)."""
    from course_lib.grading.authoring.release import release as release_assignments

    for folder in release_assignments(_assignments(assignments)):
        click.echo(f"released {folder}")


@main.command()
@click.argument("assignment")
@click.option("--submissions", type=click.Path(), help="submitted/<student>/<assignment>/ folder or a .zip of it.")
@click.option("--workers", type=int, help="Parallel local sandboxes (default: the number of cores).")
@click.option("--timeout", type=float, help="Wall-time cap per submission, seconds.")
@click.option("--memory", type=int, help="Memory cap per submission, MB.")
@click.option("--db", "db_url", help="Gradebook SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
              "(default: nbgrader_config.py's db_url, else gradebook.db).")
@click.option("--dask", "scheduler", metavar="ADDRESS", help="Grade on a Dask cluster (tcp://host:8786) instead "
              "of local sandboxes.")
def grade(assignment: str, submissions: str | None, workers: int | None, timeout: float | None,
          memory: int | None, db_url: str | None, scheduler: str | None) -> None:
    """Autograde a whole class, sandboxed and in parallel; write the gradebook, grades.csv and feedback."""
    from pathlib import Path

    from course_lib.grading.grade.gradebook import GradebookUnreachable
    from course_lib.grading.grade.run import grade_class, summary

    _assignments((assignment,))
    if scheduler:
        _require_extra("instructor", "--dask", ("dask", "distributed"))
    try:
        results = grade_class(assignment, Path(submissions) if submissions else None, workers, timeout, memory,
                              db_url, scheduler)
    except GradebookUnreachable as err:
        if "psycopg" in str(err):
            _require_extra("instructor", "a PostgreSQL gradebook", ("psycopg",))
        raise
    click.echo(summary(assignment, results))
    click.echo("wrote grades.csv, the nbgrader gradebook, autograded/ and feedback/")


@main.command()
@click.argument("assignment")
@click.option("--lms", type=click.Choice(["canvas"]), help="Also write grades for this LMS's gradebook import "
              "(reports/ASSIGNMENT/canvas.csv).")
@click.option("--canvas-match", type=click.Choice(["ID", "SIS User ID", "SIS Login ID"]), default="SIS User ID",
              show_default=True, help="The Canvas column that holds your nbgrader student ids.")
@click.option("--canvas-id", help="The Canvas assignment id, to update that assignment (default: Canvas creates "
              "a new one).")
@click.option("--db", "db_url", help="Gradebook SQLAlchemy URL (default: nbgrader_config.py's db_url, else "
              "gradebook.db).")
@click.option("--formgrader", default="http://localhost:8888", show_default=True,
              help="The Jupyter server whose formgrader the page links to.")
def report(assignment: str, lms: str | None, canvas_match: str, canvas_id: str | None, db_url: str | None,
           formgrader: str) -> None:
    """After `course grade`: write reports/ASSIGNMENT/ (index.html, items.csv, misconceptions.csv, scores.csv)."""
    from course_lib.paths import course_root
    from course_lib.report import report as write_report

    _assignments((assignment,))
    written = write_report(assignment, course_root(), db_url, lms, canvas_match, canvas_id, formgrader)
    click.echo(f"{assignment}: {written.students} students, {written.misconceptions} misconception(s) found; "
               f"wrote {', '.join(p.name for p in written.files)} in {written.folder}")


@main.command()
@click.argument("notebook", required=False)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: site/_build/slides/).")
def slides(notebook: str | None, out: str | None) -> None:
    """Execute a notebook (or all) and render reveal.js slides that work offline (press S for speaker notes)."""
    from pathlib import Path

    _require_extra("lecturer", "course slides", ("sphinx_revealjs", "jupyter_server_mathjax"))
    from course_lib.slides import build

    decks = build([notebook] if notebook else [], Path(out) if out else None, progress=click.echo)
    if any(failure for _, failure in decks):
        raise click.ClickException("a notebook failed to execute: its slides stop at the failing cell")


@main.command()
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: site/_build/).")
def site(out: str | None) -> None:
    """Execute every notebook and write a static course site that works offline (open its index.html)."""
    from pathlib import Path

    _require_extra("lecturer", "course site", ("sphinx_revealjs", "jupyter_server_mathjax"))
    from course_lib.site import build

    result = build(Path(out) if out else None, progress=click.echo)
    click.echo(f"wrote {result.index}")
    if result.failures:
        failed = "; ".join(f"{name}: {failure}" for name, failure in result.failures.items())
        raise click.ClickException(f"{len(result.failures)} notebook(s) failed to execute ({failed})")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="List the benchmarks and exit.")
@click.option("--quick", is_flag=True, help="Smoke run with tiny sizes (figures not meaningful).")
def bench(names: tuple[str, ...], list_only: bool, quick: bool) -> None:
    """Run benchmarks from bench/ (all, or the NAMES given) and print their figures."""
    found = benches.available()
    if list_only:
        for name in found:
            click.echo(f"{name:<20} {benches.describe(benches.load(name))}")
        return
    for name in names or found:
        try:
            module = benches.load(name)
        except KeyError as err:
            raise click.ClickException(err.args[0]) from None
        click.echo(f"{name}: {benches.describe(module)}")
        click.echo(benches.format_table(module.run(quick=quick)))


if __name__ == "__main__":
    main()
