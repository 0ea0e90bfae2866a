"""The report's one HTML page: self-contained (inline style, plots as embedded PNGs), so it opens offline and
can be mailed or archived as a single file. Everything shown is escaped: student ids, flags and messages
come from submissions."""

import base64
import io
import statistics
from html import escape
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the non-interactive backend

from course_lib.grading import protocol  # noqa: E402
from course_lib.grading.nbgrader_api import CourseFolders  # noqa: E402
from course_lib.report.items import Item  # noqa: E402
from course_lib.report.misconceptions import Found  # noqa: E402
from course_lib.report.results import ClassResults, Student  # noqa: E402

STATUSES = (protocol.GRADED, protocol.TIMEOUT, protocol.CRASHED, protocol.INVALID, protocol.MISSING,
            protocol.FLAGGED, protocol.ERROR)
STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
         "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}.num{text-align:right}")


def png(fig) -> str:
    """The figure as an <img> with the PNG inline (no file, no network)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _histogram(results: ClassResults) -> str:
    scores = [s.score for s in results.students]
    top = max((s.max_score for s in results.students), default=0) or 1  # autograded points, as grades.csv has
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.hist(scores, bins=min(20, max(5, int(top) + 1)), range=(0, top))
    ax.set(xlabel=f"autograded score (of {top:g})", ylabel="students")
    return png(fig)


def _statuses(students: list[Student]) -> str:
    """Every status (those that never occurred too, as 0) with its students."""
    by_status: dict[str, list[str]] = {s: [] for s in STATUSES}
    for x in students:
        by_status.setdefault(x.status, []).append(x.student_id)
    rows = [[escape(s), f'<span class="num">{len(ids)}</span>', escape(", ".join(ids))]
            for s, ids in by_status.items()]
    return _table(["status", "students", "who"], rows)


def _timing(students: list[Student]) -> str:
    times = [x.duration_s for x in students if x.duration_s > 0]
    if not times:
        return "no grading times recorded"
    slowest = max(students, key=lambda x: x.duration_s)
    return (f"median grading time {statistics.median(times):.1f} s, slowest {slowest.duration_s:.1f} s "
            f"({escape(slowest.student_id)})")


def _lateness(students: list[Student]) -> str:
    late = [x for x in students if x.late_s]
    if not late:
        return "None submitted late."
    return (f"{len(late)} submitted late ({escape(', '.join(x.student_id for x in late))}), late penalties "
            f"{sum(x.penalty for x in late):g} points in all.")


def overview(results: ClassResults) -> str:
    """Students graded, the score histogram, each status with its students, median and slowest times."""
    students = results.students
    graded = sum(1 for x in students if x.cell_scores)
    return (f"<h2>Overview</h2><p>{len(students)} students in grades.csv, {graded} graded into the gradebook; "
            f"{_timing(students)}. {_lateness(students)}</p>{_histogram(results)}{_statuses(students)}")


def _items_plot(items: list[Item]) -> str:
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1))
    shares = [i.mean_score / i.points if i.mean_score is not None and i.points else 0 for i in items]
    ax.barh([i.cell for i in items][::-1], shares[::-1])
    ax.set(xlabel="mean score / points", xlim=(0, 1))
    return png(fig)


def items_section(items: list[Item]) -> str:
    """The item table, hardest and least discriminating first."""
    rows = [[escape(r["cell"]), r["points"], r["attempted"], r["full_marks"], r["mean_score"], r["discrimination"]]
            for r in (i.row() for i in items)]
    return ("<h2>Items (test cells)</h2><p>Hardest first, then least discriminating. Discrimination: the "
            "correlation of the cell's score with the rest of the score; near 0 or below, the cell does not "
            "separate strong from weak students (or is broken). Also in items.csv.</p>"
            + (_items_plot(items) if items else "")
            + _table(["cell", "points", "attempted", "full marks", "mean score", "discrimination"], rows))


def _grouped(found: list[Found]) -> list[tuple]:
    """(misconception, its test cells, its students) per misconception, most students first: a lecturer
    reads one line per mistake, whichever visible or hidden test caught it."""
    groups: dict[str, tuple] = {}
    for f in found:
        named, cells, ids = groups.setdefault(f.misconception.text, (f.misconception, [], set()))
        cells.append(f.cell)
        ids.update(f.student_ids)
    return sorted(groups.values(), key=lambda g: (-len(g[2]), g[0].name))


def misconceptions_section(found: list[Found]) -> str:
    """Each named misconception, the tests it came from, who reproduced it, and where the course teaches it."""
    rows = [[escape(named.name), escape(", ".join(cells)), len(ids), escape(", ".join(sorted(ids))),
             f'<a href="../../notebooks/{escape(named.section.notebook)}">{escape(named.section.notebook)}</a>'
             f" › {escape(named.section.heading)}", escape(named.section.lecture)]
            for named, cells, ids in _grouped(found)]
    table = (_table(["misconception", "test cells", "students", "who", "notebook section", "in the lecture"], rows)
             if rows else "<p>No student's answers reproduced a named misconception.</p>")
    return ("<h2>Misconceptions</h2><p>What the students' wrong answers reproduced, most common first: the "
            "page to open before the next lecture. One row per test cell in misconceptions.csv.</p>" + table)


def flags_section(results: ClassResults, formgrader: str) -> str:
    """Every flagged, late, timed-out, crashed, invalid or failed submission with its reasons and links."""
    review = [s for s in results.students if s.flags or s.late_s or s.status != protocol.GRADED]
    rows = [[escape(s.student_id), escape(s.status), "<br>".join(escape(f) for f in (*_late(s), *s.flags)),
             _links(results, s, formgrader)] for s in review]
    table = _table(["student", "status", "reasons", "review"], rows) if rows else "<p>Nothing to review.</p>"
    return "<h2>Flags to review</h2>" + table


def _late(s: Student) -> tuple[str, ...]:
    return (f"late by {s.late_s / 3600:.1f} h: penalty {s.penalty:g} points",) if s.late_s else ()


def _links(results: ClassResults, s: Student, formgrader: str) -> str:
    a, sid = escape(quote(results.assignment)), escape(quote(s.student_id))
    links = [f'<a href="{escape(formgrader.rstrip("/"))}/formgrader/manage_students/{sid}/{a}">formgrader</a>'
             ] if s.cell_scores else []  # formgrader knows only the submissions in the gradebook
    if (CourseFolders(results.root).feedback(results.assignment, s.student_id) / f"{results.assignment}.html").exists():
        links.insert(0, f'<a href="../../feedback/{sid}/{a}/{a}.html">feedback</a>')
    return " · ".join(links) or "grades.csv only"


def render(results: ClassResults, items: list[Item], found: list[Found], formgrader: str) -> str:
    """The whole page."""
    title = f"Report: {escape(results.assignment)}"
    body = (overview(results) + misconceptions_section(found) + items_section(items)
            + flags_section(results, formgrader))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>")
