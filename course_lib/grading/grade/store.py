"""Where one assignment's grading run keeps its results: the autograded notebooks and feedback pages in the
course's nbgrader folders, scores in the gradebook, and one state file per student (written last: it marks a
student's work done, so a killed run, run again, grades only what is left)."""

import json
import os
from dataclasses import asdict
from pathlib import Path

import nbformat

from course_lib.grading.grade.gradebook import gradebook_url
from course_lib.grading.grade.submission import Graded
from course_lib.grading.nbgrader_api import CourseFolders


class Store:
    """The course folders, gradebook URL and state folder of one assignment's grading runs."""

    def __init__(self, assignment: str, root: Path | None = None, db_url: str | None = None):
        self.assignment, self.folders = assignment, CourseFolders(root)
        self.root, self.state = self.folders.root, self.folders.state(assignment)
        self.state.mkdir(parents=True, exist_ok=True)
        self.db_url = gradebook_url(self.root, db_url)

    def previous(self, student: str) -> Graded | None:
        """The student's saved result, or None (never graded, or saved by an older version)."""
        path = self.state / f"{student}.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return Graded(**{**data, "flags": tuple(data["flags"])})
        except (ValueError, TypeError, KeyError):
            return None  # a state file from an older version: grade again

    def save_pages(self, gradebook, graded: Graded, executed, html: str) -> None:
        """The autograded notebook, the gradebook's scores and the feedback page of one graded submission."""
        folder = self.folders.autograded(self.assignment, graded.student_id)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, folder / f"{self.assignment}.ipynb")
        gradebook.record_scores(self.assignment, graded.student_id, graded.cell_scores)
        folder = self.folders.feedback(self.assignment, graded.student_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.assignment}.html").write_text(html)

    def record(self, graded: Graded) -> None:
        """The state file, replaced atomically."""
        tmp = self.state / f".{graded.student_id}.json"
        tmp.write_text(json.dumps(asdict(graded)))
        os.replace(tmp, self.state / f"{graded.student_id}.json")

    def saved(self) -> list[Graded]:
        """Every student's saved result, from this run or an earlier one."""
        results = (self.previous(path.stem) for path in sorted(self.state.glob("[!.]*.json")))
        return [g for g in results if g is not None]
