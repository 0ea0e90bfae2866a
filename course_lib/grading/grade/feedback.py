"""Per-student feedback: the student's code and outputs, each test cell's score and the grader's messages,
never a hidden test's source.

Test cells are shown as *released* (hidden blocks already removed by nbgrader). Hidden tests are no secret
that matters under `course grade` (their inputs are drawn from a secret per student), but their source is
the instructor's: any hidden-test line a submission printed is redacted from the page.
"""

import html as html_text
from functools import cache

import nbformat
from nbconvert import HTMLExporter

from course_lib.grading.authoring.sources import grade_id

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def hidden_lines(source) -> set[str]:
    """Every non-blank line between hidden-test markers in the instructor's source."""
    lines, inside = set(), False
    for cell in source.cells:
        for line in cell.source.splitlines():
            if line.strip() == HIDDEN_BEGIN:
                inside = True
            elif line.strip() == HIDDEN_END:
                inside = False
            elif inside and line.strip():
                lines.add(line.strip())
    return lines


REDACTED = "[hidden test]"
MIN_REDACTED = 10  # shorter lines ("pass", ")") are redacted nowhere: they reveal nothing and occur everywhere


def feedback_notebook(executed, released, test_points: dict[str, float], cell_scores: dict[str, float],
                      header: str):
    """A notebook for the student: `header` first, then the graded notebook with released test cells."""
    released_by_id = {grade_id(c): c for c in released.cells}
    nb = nbformat.v4.new_notebook(metadata=executed.metadata)
    nb.cells.append(nbformat.v4.new_markdown_cell(header))
    for cell in executed.cells:
        gid = grade_id(cell)
        if gid not in test_points:
            nb.cells.append(nbformat.from_dict(cell))
            continue
        shown = nbformat.from_dict(cell)
        shown.source = released_by_id[gid].source
        nb.cells.append(shown)
        nb.cells.append(nbformat.v4.new_markdown_cell(
            f"**Test `{gid}`: {cell_scores.get(gid, 0):g} / {test_points[gid]:g} points**"))
    return nb


@cache
def _exporter() -> HTMLExporter:
    """One exporter per process: building one loads its templates, most of the cost of a page."""
    return HTMLExporter(template_name="classic")


def redact(text: str, forbidden: set[str]) -> str:
    """`text` with every forbidden line of at least MIN_REDACTED characters (raw or HTML-escaped) replaced."""
    for line in sorted(forbidden, key=len, reverse=True):
        if len(line) >= MIN_REDACTED:
            text = text.replace(line, REDACTED).replace(html_text.escape(line), REDACTED)
    return text


def to_html(nb, forbidden: set[str]) -> str:
    """HTML of `nb` with every forbidden line (hidden-test source) redacted."""
    html, _ = _exporter().from_notebook_node(nb)
    return redact(html, forbidden)
