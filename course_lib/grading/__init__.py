"""Everything instructors run to make and grade the exercises; the teaching modules never import it.

Rooms, by where their code runs (docs/architecture.md has the map):
- protocol.py, plain.py: SHARED, the messages and plain-data codec between the sandbox and the host;
- kernel/, checks/: KERNEL SIDE, what a test cell runs in the student's kernel or the sandbox (checks/exNN.py:
  the `check_*` functions test cells call; probes only, never a verdict);
- judges/: HOST, the verdicts (references, labels and thresholds never enter a sandbox);
- sandbox/: HOST, the sandbox and the host's end of its cells;
- grade/: HOST, `course grade`, from submissions to gradebook;
- authoring/: HOST, `course release` and `course check`;
- nbgrader_api.py: HOST, the course's nbgrader configuration and API.
"""

import sys

# jsonschema (loaded by nbformat) imports the optional IRI checker rfc3987_syntax at every process start;
# notebook and gradebook validation never check IRIs, and grading starts many processes.
sys.modules.setdefault("rfc3987_syntax", None)
