"""The kernel's end of every check: ask for the inputs, run the probe on them, hand back plain data.

    channel.check("ex01.relu", probe, seed=1, hidden=False)

`probe(given) -> plain data` calls the student's code on the inputs `given`. Where the check's inputs come
from and who judges the data depends on where the kernel runs:

- **graded** (`course grade`): the sandbox executor has `connect`ed this module to the host. The host answers
  the ask with inputs derived from its secret (the notebook's seed is not used), receives the data and
  judges it itself. Nothing is judged here and nothing is raised: the host decides.
- **local** (a student's Jupyter, plain `nbgrader autograde`): the host side's judges are importable in this
  process, so the check is prepared from the notebook's parameters and judged right here; a failure raises
  CheckFailed (an AssertionError, as nbgrader expects) with the judge's message.
"""

import importlib
import textwrap
from collections.abc import Callable

from course_lib.grading import plain, protocol

LOCAL_JUDGES = "course_lib.grading.judges"  # host side; present outside the sandbox only

_link = None


class CheckFailed(AssertionError):
    """A check the student's code failed. Jupyter shows only its message, wrapped to lines that `nbgrader
    validate` prints whole (it cuts lines at about 86 characters), and no grader frames."""

    WIDTH = 80

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is shown
        text = f"{type(self).__name__}: {self}"
        return [line for paragraph in text.splitlines() for line in textwrap.wrap(paragraph, self.WIDTH) or [""]]


class NotGiven(RuntimeError):
    """The host refused a check its inputs (the check is not one this cell makes)."""


def connect(link) -> None:
    """Route checks to the grading host (the sandbox executor calls this before the first cell). `link` has
    send(message: dict) and receive() -> dict."""
    global _link
    _link = link


def graded() -> bool:
    """True under `course grade`: checks go to the host (and nothing here can see their verdicts)."""
    return _link is not None


def check(name: str, probe: Callable, **params) -> None:
    """Run one check: graded, ask the host and hand it the probe's data; local, judge here."""
    if _link is None:
        message = importlib.import_module(LOCAL_JUDGES).judge_here(name, probe, params)
        if message:
            raise CheckFailed(message)
        return
    _link.send({"op": protocol.ASK, "check": name, "params": plain.encode(params)})
    reply = _link.receive()
    if reply.get("op") != protocol.GIVEN or not reply.get("ok"):
        raise NotGiven(f"{name}: {reply.get('error', 'the grader gave no inputs')}")
    data = probe(plain.decode(reply["given"]))
    try:
        _link.send({"op": protocol.DATA, "check": name, "data": plain.encode(data)})
    except plain.PlainDataError as err:
        _link.send({"op": protocol.DATA, "check": name, "error": f"the probe's result is not plain data: {err}"})


def used_reference(name: str) -> None:
    """Tell the host a name the assignment asks students to write was looked up (graded only)."""
    if _link is not None:
        _link.send({"op": protocol.REFERENCE, "name": str(name)})
