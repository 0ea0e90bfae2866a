"""HOST SIDE: making assignments. sources.py (reading the nbgrader source in solutions/), release.py (`course
release`: the student version in exercises/), mutation.py (`course check`: the solution, the blank notebook
and every mutant in solutions/<ex>/mutants.toml graded by nbgrader and by `course grade`)."""
