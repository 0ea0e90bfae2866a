"""Late submissions, as nbgrader counts them: the time in nbgrader's timestamp.txt (written by `nbgrader
collect`, or by you when you unpack an LMS download) against the assignment's due date in the gradebook
(`nbgrader db assignment add NAME --duedate=...`, or formgrader), plus any per-student extension there; the
penalty is what the late-submission plugin configured in nbgrader_config.py gives
(`c.AssignLatePenalties.plugin_class`, default `LateSubmissionPlugin` with `c.LateSubmissionPlugin.penalty_method`
'none' or 'zero'), clamped to [0, score] as nbgrader's autograde does.

`course grade` applies it in its own process after grading: each submission's lateness and penalty go into
the gradebook (the submission's timestamp, the notebook's late_submission_penalty: what formgrader shows)
and into the student's result (grades.csv's late_s and penalty). A run recomputes it for everyone, so a
changed due date or a new extension takes effect without grading again.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from nbgrader.api import MissingEntry
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import parse_utc

from course_lib.grading.nbgrader_api import course_config

TIMESTAMP = "timestamp.txt"


class BadTimestamp(ValueError):
    """A timestamp.txt that nbgrader's parser cannot read."""


@dataclass(frozen=True)
class Lateness:
    """How late one submission was (seconds; 0 on time or without a timestamp or due date) and its penalty."""

    seconds: float = 0.0
    penalty: float = 0.0


def submitted_at(folder: Path):
    """The time in folder/timestamp.txt (a datetime in UTC), or None without one; BadTimestamp if unreadable."""
    path = folder / TIMESTAMP
    if not path.is_file():
        return None
    text = path.read_text(errors="replace").strip()
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError):
        raise BadTimestamp(f"{TIMESTAMP}: not a time nbgrader can read ({text[:40]!r}): lateness not checked") from None


def plugin(root: Path):
    """The late-submission plugin nbgrader_config.py configures (nbgrader's default when it sets none)."""
    return AssignLatePenalties(config=course_config(root)).plugin_class(config=course_config(root))


def record(gradebook, assignment: str, student: str, timestamp, score: float, late_plugin) -> Lateness:
    """Store the submission's timestamp in the gradebook, compute its lateness and penalty there, store the
    penalty on its notebook and return both. Nothing changes for a student the gradebook does not hold."""
    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return Lateness()
    submission.timestamp = timestamp
    seconds = submission.total_seconds_late
    penalty = late_plugin.late_submission_penalty(student, score, seconds) if seconds > 0 else None
    penalty = min(max(penalty or 0.0, 0.0), score)
    for notebook in submission.notebooks:  # one notebook per assignment in this course
        notebook.late_submission_penalty = penalty if seconds > 0 else None
    gradebook.db.commit()
    return Lateness(float(seconds), float(penalty))


def apply(writer, graded, folder: Path, assignment: str, late_plugin):
    """`graded` (a grade.Graded) with the lateness of the submission in `folder` recorded; a bad timestamp
    is a flag on the result, never the run's end."""
    try:
        stamp = submitted_at(folder)
    except BadTimestamp as err:
        return replace(graded, late_s=0.0, penalty=0.0, flags=(*graded.flags, str(err)))
    with writer.locked() as gradebook:
        late = record(gradebook, assignment, graded.student_id, stamp, graded.score, late_plugin)
    return replace(graded, late_s=late.seconds, penalty=late.penalty)
