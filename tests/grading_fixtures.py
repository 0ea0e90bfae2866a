"""Grading test helpers: fixture submissions for ex01_activations (a solved notebook, and variants for each
attack or fault), any assignment's solved or released notebook, and the host's end of the check channel in
this process (`Host`, `graded`), so a check's kernel side and its judge run together without a sandbox.

Each entry of CASES: student id -> (how to build the notebook, expected status, expected autograded score out
of 16). The attacks' expected scores equal what the same answers earn without the attack: no attack gains a
point.
"""

import shutil
from functools import cache
from pathlib import Path

import nbformat

from course_lib.grading import judges, plain, protocol
from course_lib.grading.authoring.mutants import mutate, named
from course_lib.grading.authoring.mutation import MutationResult, mutation_test
from course_lib.grading.authoring.sources import grade_id, is_answer, read_source
from course_lib.grading.kernel import channel

A = "ex01_activations"


def make_course(code_root: Path, course: Path, assignment: str = A) -> Path:
    """A course folder holding the config, the assignment's source and its release."""
    for name in ("nbgrader_config.py", f"solutions/{assignment}", f"exercises/{assignment}"):
        src, dst = code_root / name, course / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return course


@cache
def checked(assignment: str) -> MutationResult:
    """`course check` of the assignment (both graders), once per test session."""
    return mutation_test(assignment, workers=2)


def released(code_root: Path, assignment: str = A):
    return nbformat.read(code_root / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def solved(code_root: Path, assignment: str = A):
    """The released notebook with the solution's answers typed in (markers removed)."""
    source = read_source(assignment, code_root)
    answers = {grade_id(c): c.source for c in source.cells if is_answer(c)}
    nb = released(code_root, assignment)
    for c in nb.cells:
        if grade_id(c) in answers:
            c.source = "\n".join(line for line in answers[grade_id(c)].split("\n") if "SOLUTION" not in line)
    return nb


def mutated(code_root: Path, assignment: str = A) -> dict:
    """Student id (mutant-01, ...) -> `solved` with that mutant applied, as `course check` grades them."""
    return {student: mutate(solved(code_root, assignment), m, assignment) for student, m in named(assignment).items()}


def cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def _with(code_root, **sources):
    nb = solved(code_root)
    for gid, text in sources.items():
        cell(nb, gid).source = text
    return nb


WRONG_RELU = "def relu(x):\n    return np.abs(x)"
LINK = "from course_lib.grading.kernel import channel\nlink = channel._link\n"


def _edit_test(root):
    nb = _with(root, relu=WRONG_RELU)
    cell(nb, "test_relu").source = "pass"
    return nb


def _delete_tests(root):
    nb = _with(root, relu=WRONG_RELU)
    nb.cells = [c for c in nb.cells if grade_id(c) not in ("test_relu", "test_relu_hidden")]
    return nb


def _more_points(root):
    nb = _with(root, relu=WRONG_RELU)
    cell(nb, "test_relu_grad").metadata["nbgrader"]["points"] = 50
    return nb


def _rename_test(root):
    nb = _with(root, relu=WRONG_RELU)
    cell(nb, "test_relu").metadata["nbgrader"]["grade_id"] = "test_mine"
    return nb


def _invalid_added_cell(root):
    """A cell the student added with metadata and fields no valid notebook has."""
    nb = solved(root)
    extra = nbformat.v4.new_code_cell("print('mine')")
    extra.metadata.update({"collapsed": "not a bool", "nbgrader": "=2+3"})
    extra["execution_count"] = "x"
    nb.cells.insert(4, extra)
    return nb


# Forged records: the checks' data replaced, or written on the channel directly.
PATCH_CHANNEL = "from course_lib.grading.kernel import channel\nchannel.check = lambda *a, **k: None\n" + WRONG_RELU
FORGE_RELU_DATA = LINK + (
    "real_check = channel.check\n"
    "def forged_check(name, probe, **params):\n"
    "    if name != 'ex01.relu':\n        return real_check(name, probe, **params)\n"
    "    link.send({'op': 'ask', 'check': name, 'params': {'dict': {}}})\n    link.receive()\n"
    "    zeros = [[{'data': 'course_lib.grading.kernel.probes.Outcome', 'fields': {'value': {'array': {'dtype': "
    "'float64', 'shape': [7], 'flat': [0.0] * 7}}, 'dtype': 'float64'}}] * 8]\n"
    "    link.send({'op': 'data', 'check': name, 'data': zeros})\n"
    "    link.send({'op': 'data', 'check': name, 'data': zeros})\n"
    "channel.check = forged_check\n") + WRONG_RELU
HUGE_NUMBER = LINK + (
    "def forged_check(name, probe, **params):\n"
    "    link.send({'op': 'ask', 'check': name, 'params': {'dict': {}}})\n    link.receive()\n"
    "    head = b'{\"op\": \"data\", \"check\": \"%s\", \"data\": 1' % name.encode()\n"
    "    link.outgoing.write(head + b'0' * 400 + b'}\\n')\n"
    "    link.outgoing.flush()\n"
    "channel.check = forged_check\n"
    "def tanh(x):\n    return np.tanh(x)\ndef tanh_grad(x):\n    return 1 - np.tanh(x) ** 2")
DONE_EARLY = LINK + "link.send({'op': 'done', 'index': 99, 'ok': True, 'outputs': []})\n" + WRONG_RELU
FLOOD = LINK + ("for _ in range(10_000):\n    link.send({'op': 'data', 'check': 'ex01.tanh', 'data': 1})\n"
                "def tanh(x):\n    return np.tanh(x)\ndef tanh_grad(x):\n    return 1 - np.tanh(x) ** 2")
ATEXIT = LINK + ("import atexit\npassed = [{'output_type': 'stream', 'name': 'stdout', 'text': 'all passed'}]\n"
                 "atexit.register(lambda: [link.send({'op': 'done', 'index': i, 'ok': True, 'outputs': passed}) "
                 "for i in range(40)])\n" + WRONG_RELU)
FAKE_STATUS = ("print('executor-status: ok')\nimport signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
               "print('=2+3')\nwhile True:\n    pass")
PRINT_CELLS = ("import base64\nget_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell, "
               "base64.b64encode(info.raw_cell.encode()).decode()))\n"
               "def relu(x):\n    return np.maximum(x, 0)")
# Borrowing the course's own answer.
BORROW = "from course_lib.activations import relu"
BORROW_IMPORTLIB = ("import importlib\nmodule = importlib.import_module('course_lib.' + 'activations')\n"
                    "relu = getattr(module, 're' + 'lu')")
BORROW_SOURCE = ("import os, sys\nfound = []\n"
                 "for top in ('/root', '/work', '/tmp', '/home', '/opt', '/srv', '/run', *sys.path):\n"
                 "    for folder, dirs, files in os.walk(top):\n"
                 "        for name in files:\n"
                 "            if name == 'activations.py':\n"
                 "                text = open(os.path.join(folder, name), errors='replace').read()\n"
                 "                found += [text] if 'def relu(' in text else []\n"
                 "if found:\n    exec(found[0])\nelse:\n    def relu(x):\n        return np.abs(x)")
PATCH_NUMPY = ("import numpy\nnumpy.allclose = lambda *a, **k: True\nnumpy.isclose = lambda a, b, **k: "
               "numpy.ones(numpy.shape(a), bool)\n" + WRONG_RELU)
ALWAYS_EQUAL = ("class Yes(np.ndarray):\n    def __eq__(self, other):\n        return np.ones(self.shape, bool)\n"
                "def relu(x):\n    return np.zeros_like(x).view(Yes)")
SET_RESULT = WRONG_RELU + "\ntest_passed = True\nscore = 16"
LOOP = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"

CASES = {
    "full": (solved, "graded", 16),
    "wrong_relu": (lambda r: _with(r, relu=WRONG_RELU), "graded", 13),
    "blank": (released, "graded", 0),
    # forged records and channel abuse
    "patch_channel": (lambda r: _with(r, relu=PATCH_CHANNEL), "graded", 0),
    "forge_relu_data": (lambda r: _with(r, relu=FORGE_RELU_DATA), "graded", 13),
    "huge_number": (lambda r: _with(r, tanh=HUGE_NUMBER), "graded", 13),
    "done_early": (lambda r: _with(r, relu=DONE_EARLY), "crashed", 0),
    "flood": (lambda r: _with(r, tanh=FLOOD), "crashed", 13),
    "atexit": (lambda r: _with(r, relu=ATEXIT), "graded", 13),
    "fake_status": (lambda r: _with(r, tanh=FAKE_STATUS), "timeout", 13),
    "print_cells": (lambda r: _with(r, relu=PRINT_CELLS), "graded", 16),
    "invalid_added_cell": (_invalid_added_cell, "graded", 16),  # repaired at intake, flagged there
    # the course's own answer
    "borrow": (lambda r: _with(r, relu=BORROW), "flagged", 13),
    "borrow_importlib": (lambda r: _with(r, relu=BORROW_IMPORTLIB), "flagged", 13),
    "borrow_source": (lambda r: _with(r, relu=BORROW_SOURCE), "graded", 13),
    # patched comparisons
    "patch_numpy": (lambda r: _with(r, relu=PATCH_NUMPY), "graded", 13),
    "always_equal": (lambda r: _with(r, relu=ALWAYS_EQUAL), "graded", 13),
    "set_result": (lambda r: _with(r, relu=SET_RESULT), "graded", 13),
    # tampering with locked cells and metadata
    "edit_test": (_edit_test, "flagged", 13),
    "delete_tests": (_delete_tests, "flagged", 13),
    "more_points": (_more_points, "flagged", 13),
    "rename_test": (_rename_test, "flagged", 13),
    # faults
    "os_exit": (lambda r: _with(r, tanh="import os\nos._exit(1)"), "crashed", 13),
    "sys_exit": (lambda r: _with(r, tanh="import sys\nsys.exit(0)"), "graded", 13),
    "loop": (lambda r: _with(r, tanh=LOOP), "timeout", 13),
}
BROKEN_FILES = {"empty": ("", "invalid", "is an empty file"), "bad_json": ("{", "invalid", "not a readable notebook")}


def submit(submitted: Path, student: str, nb=None, text: str | None = None, name: str | None = None,
           assignment: str = A) -> None:
    folder = submitted / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (name or f"{assignment}.ipynb")).write_text(text if text is not None else nbformat.writes(nb))


def grade_class(code_root: Path, course: Path, assignment: str, notebooks: dict, monkeypatch, **kwargs) -> dict:
    """`course grade` (bubblewrap, secret inputs) of {student: notebook} in a fresh course folder `course`;
    student -> Graded. kwargs go to grade.grade (workers, limits, ...)."""
    from course_lib.grading.grade import grade

    make_course(code_root, course, assignment)
    for student, nb in notebooks.items():
        submit(course / "submitted", student, nb, assignment=assignment)
    monkeypatch.setenv("RECTIFIED_ROOT", str(course))
    return {g.student_id: g for g in grade(assignment, progress=False, **{"workers": 2, **kwargs})}


def make_class(code_root: Path, submitted: Path, cases=CASES) -> None:
    for student, (build, _, _) in cases.items():
        submit(submitted, student, build(code_root))
    for student, (text, _, _) in BROKEN_FILES.items():
        submit(submitted, student, text=text)
    submit(submitted, "renamed", solved(code_root), name="answers.ipynb")
    (submitted / "no_notebook").mkdir()
    submit(submitted, "has space", solved(code_root))


class Host:
    """The host's end of the check channel, in this process: answers each ask with the check's inputs for a
    secret seed (as `course grade` does) and keeps what comes back. Messages go through the protocol's
    encoding both ways, as they would over the sandbox's pipes."""

    def __init__(self, assignment: str = "ex00", student: str = "student", secret: bytes = b"test secret"):
        self.assignment, self.student, self.secret = assignment, student, secret
        self.served: list[judges.Served] = []
        self.data: list = []
        self.references: list[str] = []
        self._reply = None

    def send(self, message: dict) -> None:
        message = protocol.decode(protocol.encode(message))
        if message["op"] == protocol.ASK:
            check, params = message["check"], plain.decode(message["params"])
            served = judges.serve(check, judges.secret_params(check, params, self.secret, self.assignment,
                                                               self.student))
            self.served.append(served)
            self._reply = {"op": protocol.GIVEN, "ok": True, "given": plain.encode(served.given)}
        elif message["op"] == protocol.DATA:
            self.data.append(plain.decode(message["data"]) if "data" in message else message["error"])
        elif message["op"] == protocol.REFERENCE:
            self.references.append(message["name"])

    def receive(self) -> dict:
        return protocol.decode(protocol.encode(self._reply))

    def verdicts(self) -> list[str | None]:
        """The judge's message on each check's data (None: passed)."""
        assert len(self.data) == len(self.served), "a check asked for inputs but handed back nothing"
        return [judges.verdict_on(s, d) for s, d in zip(self.served, self.data, strict=True)]


def graded(check_fn, *args, host: Host | None = None, **params) -> str | None:
    """What `course grade` decides for one call of a check function (secret inputs, judged on the host side):
    the first failing check's message, or None when every check it made passed."""
    host = host or Host()
    channel.connect(host)
    try:
        check_fn(*args, **params)
    finally:
        channel.connect(None)
    return next((m for m in host.verdicts() if m), None)


def forged(check: str, data, **params) -> str | None:
    """What the host decides when a sandbox hands back `data` (anything) for `check` made with `params`."""
    served = judges.serve(check, judges.secret_params(check, params, b"test secret", "ex00", "student"))
    return judges.verdict_on(served, judges.roundtrip(data))


def message_of(check_fn, *args, **params) -> str | None:
    """The AssertionError message a check raises when run locally (the notebook's seed), or None."""
    try:
        check_fn(*args, **params)
    except AssertionError as err:
        return str(err)
    return None
