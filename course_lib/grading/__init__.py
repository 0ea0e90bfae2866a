"""Everything instructors run: probes and verdicts for exercise tests, release and instructor checks.

The teaching modules (activations, nn, ...) never import this package. Test cells in the exercises import
`course_lib.grading.checks`, which is split in two steps so a grader can run them in different processes:
`probes` runs the student's code on the grader's inputs and returns plain data (arrays, numbers, error
strings); `verdict` compares plain data with the reference and never touches the student's objects.
"""

import sys

# jsonschema (loaded by nbformat) imports the optional IRI checker rfc3987_syntax, ~0.75 s per process start;
# notebook and gradebook validation never check IRIs, and grading starts many processes.
sys.modules.setdefault("rfc3987_syntax", None)
