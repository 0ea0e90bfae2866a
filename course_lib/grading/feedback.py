"""Per-student feedback: the student's code and outputs, each test cell's score, visible tests' messages, and
never a hidden test's source or output.

Test cells are shown as *released* (hidden blocks already removed by nbgrader); a test cell that is hidden
entirely shows no output. The finished HTML is checked for every line of hidden-test source before it is
returned, so a mistake elsewhere cannot leak one.
"""

from functools import cache

import nbformat
from nbconvert import HTMLExporter

from course_lib.grading.sources import grade_id

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


def _has_visible_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


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
        if not _has_visible_code(shown.source):
            shown.outputs = []
        nb.cells.append(shown)
        nb.cells.append(nbformat.v4.new_markdown_cell(
            f"**Test `{gid}`: {cell_scores.get(gid, 0):g} / {test_points[gid]:g} points**"))
    return nb


@cache
def _exporter() -> HTMLExporter:
    """One exporter per process: building one loads its templates, most of the cost of a page."""
    return HTMLExporter(template_name="classic")


def to_html(nb, forbidden: set[str]) -> str:
    """HTML of `nb`; raises if any forbidden line (hidden-test source) appears in it."""
    html, _ = _exporter().from_notebook_node(nb)
    leaked = sorted(line for line in forbidden if line in html)
    if leaked:
        raise RuntimeError(f"feedback would reveal hidden-test source: {leaked[0]!r}")
    return html
