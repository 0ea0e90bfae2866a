"""HOST SIDE: grading a class with `course grade` (`grade`), from submissions to gradebook.

intake.py (find and validate submissions) -> plan.py (the reference run and secret) -> submission.py (restore,
sandbox, decide.py's verdicts, feedback.py's page) on workers.py's threads or cluster.py's Dask workers ->
run.py (the one writer: store.py, gradebook.py, late.py, grades.csv). Nothing here enters a sandbox.
"""

from course_lib.grading.grade.run import grade

__all__ = ["grade"]
