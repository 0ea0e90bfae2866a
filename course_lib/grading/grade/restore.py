"""Rebuild the notebook to grade from the instructor's source and the student's answers only.

Every locked and test cell comes from the source (solutions/, with its hidden tests); from the submission
only the *source text* of answer cells is taken, matched by grade id, plus cells the student added (kept in
place after the answer or locked cell they followed). So deleting or editing a read-only or test cell, or
changing cell metadata (grade ids, points), cannot change what is graded; each such change is flagged for
the instructor.
"""

import io
import tokenize

import nbformat

from course_lib.grading.authoring.sources import grade_id, is_answer


def _student_cells(submission) -> tuple[dict[str, object], dict[str, list], list[str]]:
    """Answer/locked cells by grade id, added cells by the grade id they follow, and duplicate-id flags."""
    by_id, added, flags = {}, {}, []
    previous = None
    for cell in submission.cells:
        gid = grade_id(cell)
        if gid is None:
            added.setdefault(previous, []).append(cell)
        elif gid in by_id:
            flags.append(f"duplicate grade id '{gid}' (the first copy was graded)")
        else:
            by_id[gid] = cell
            previous = gid
    return by_id, added, flags


def _tampering(source_cell, released_cell, student_cell) -> str | None:
    """A flag when the student deleted or edited a read-only/test cell or changed a cell's grading metadata."""
    gid = grade_id(source_cell)
    if student_cell is None:
        return f"deleted answer cell '{gid}' (graded as unanswered)" if is_answer(source_cell) else (
            f"deleted cell '{gid}' (restored)")
    if student_cell.metadata.get("nbgrader") != released_cell.metadata.get("nbgrader"):
        return f"changed the grading metadata of cell '{gid}' (ignored)"
    if not is_answer(source_cell) and student_cell.source != released_cell.source:
        return f"edited read-only cell '{gid}' (restored)"
    return None


def restore(source, released, submission) -> tuple[nbformat.NotebookNode, tuple[str, ...]]:
    """(notebook to grade, flags): the source's cells with the student's answers and added cells."""
    student, added, flags = _student_cells(submission)
    released_by_id = {grade_id(c): c for c in released.cells}
    flags += [f"unknown grade id '{gid}' (cell ignored)" for gid in student if gid not in released_by_id]
    restored = nbformat.v4.new_notebook(metadata=source.metadata)
    for cell in added.get(None, []):
        restored.cells.append(_added(cell))
    for cell in source.cells:
        gid = grade_id(cell)
        mine, released_cell = student.get(gid), released_by_id[gid]
        flag = _tampering(cell, released_cell, mine)
        flags += [flag] if flag else []
        restored.cells.append(_clean(_graded_cell(cell, released_cell, mine)))
        restored.cells += [_added(c) for c in added.get(gid, [])]
    return restored, tuple(flags)


def _graded_cell(source_cell, released_cell, student_cell):
    """Locked and test cells from the source (hidden tests included); an answer cell with the student's
    text, or the released stub when the student deleted it (never the source: it holds the solution)."""
    if not is_answer(source_cell):
        return source_cell
    text = (student_cell or released_cell).source
    return nbformat.from_dict({**source_cell, "source": text})


def _added(cell):
    """A cell the student added, as a fresh cell holding only its text: code stays code, anything else becomes
    markdown (so no metadata or attachment the student wrote can make the graded notebook invalid)."""
    text = cell.get("source", "")
    text = "".join(text) if isinstance(text, list) else str(text)
    if cell.get("cell_type") == "code":
        return nbformat.v4.new_code_cell(text)
    return nbformat.v4.new_markdown_cell(text)


def _clean(cell):
    """A copy without outputs or execution counts (they come from the grader's run)."""
    cell = nbformat.from_dict(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def without_comments(source: str) -> str:
    """`source` without its comments (lines that held only a comment are dropped): test cells are sent to the
    sandbox this way, so the instructor's notes in them (calibration, the solution's settings) never are."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return source
    lines = source.splitlines()
    for token in reversed([t for t in tokens if t.type == tokenize.COMMENT]):
        row, col = token.start
        lines[row - 1] = lines[row - 1][:col].rstrip()
        if not lines[row - 1].strip():
            lines[row - 1] = None
    return "\n".join(line for line in lines if line is not None)
