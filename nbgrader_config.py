"""nbgrader's configuration for the Rectified course (instructors run nbgrader from this folder).

solutions/ holds the instructor source of every assignment; exercises/ the generated student versions.
"""

from pathlib import Path

c = get_config()  # noqa: F821  (injected by nbgrader/traitlets when it loads this file)

c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "rectified"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Training happens inside locked test cells; nbgrader's default 30 s per cell is too short for that.
c.Execute.timeout = 120
c.Execute.kernel_name = "rectified"
# A student who deletes a test cell gets it back from the release instead of silently skipping it.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "mutants.toml"]
