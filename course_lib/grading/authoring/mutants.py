"""Mutants: plausible wrong solutions, each a one-place text change of a solution cell, listed in
solutions/<assignment>/mutants.toml. `course check` proves the tests catch every one of them."""

import tomllib
from dataclasses import dataclass

import nbformat

from course_lib.grading.authoring.sources import SourceError
from course_lib.grading.nbgrader_api import CourseFolders


@dataclass(frozen=True)
class Mutant:
    """A plausible wrong solution: in cell `cell`, the text `find` replaced by `replace`."""

    name: str
    cell: str
    find: str
    replace: str


def load_mutants(assignment: str) -> list[Mutant]:
    """The assignment's mutants in file order; [] without a mutants.toml, a SourceError for a malformed one."""
    path = CourseFolders().source(assignment) / "mutants.toml"
    if not path.exists():
        return []
    try:
        entries = tomllib.loads(path.read_text())["mutant"]
        return [Mutant(**entry) for entry in entries]
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as err:
        raise SourceError(f"{path}: malformed mutants file ({type(err).__name__}: {err})") from None


def named(assignment: str) -> dict[str, Mutant]:
    """The mutants under the student ids `course check` grades them as: mutant-01, mutant-02, ..."""
    return {f"mutant-{i:02d}": m for i, m in enumerate(load_mutants(assignment), 1)}


def mutate(nb, mutant: Mutant, assignment: str):
    """A copy of `nb` (the source, or any notebook holding the cell) with the mutant applied; the text must
    occur exactly once in the cell."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == mutant.cell]
    if len(cells) != 1 or cells[0].source.count(mutant.find) != 1:
        raise SourceError(f"solutions/{assignment}/mutants.toml: mutant '{mutant.name}': the text to replace "
                          f"must occur exactly once in cell '{mutant.cell}'")
    cells[0].source = cells[0].source.replace(mutant.find, mutant.replace)
    return nb
