"""`course check` on every assignment: the solution earns every autograded point, the untouched student
version earns none, and every mutant (a plausible wrong solution) loses points, both under plain nbgrader
(the notebook's seeds, tests in the student's kernel) and under `course grade` (secret inputs, judged on the
host). Which test cells a mutant fails may differ between the two where it depends on the inputs."""

import pytest

from course_lib.grading.authoring.mutants import Mutant, load_mutants, mutate
from course_lib.grading.authoring.mutation import format_table
from course_lib.grading.authoring.sources import SourceError, assignments, read_source
from tests import grading_fixtures as fx


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("assignment", assignments())
def test_solution_full_blank_zero_every_mutant_killed_by_both_graders(assignment):
    result = fx.checked(assignment)
    print(format_table([result]))
    assert load_mutants(assignment), f"{assignment} has no mutants.toml"
    assert result.graded is not None, result.skipped
    for graded in (result, result.graded):
        assert graded.solution.max_points > 0
        assert graded.solution.points == graded.solution.max_points, (graded.solution.failed_tests,
                                                                      graded.solution.messages)
        assert graded.blank.points == 0
        survivors = [name for name in graded.mutants if name not in graded.killed]
        assert not survivors
    assert result.solution.max_points == result.graded.solution.max_points
    differ = {m: (s.failed_tests, result.graded.mutants[m].failed_tests) for m, s in result.mutants.items()
              if set(s.failed_tests) != set(result.graded.mutants[m].failed_tests)}
    print(f"mutants failing other cells under secret inputs: {differ}")


def test_a_mutant_whose_text_is_not_in_its_cell_is_a_clear_error():
    bad = Mutant("typo", "relu", "np.maximum(x, 1)", "x")
    with pytest.raises(SourceError, match="mutant 'typo': the text to replace must occur exactly once in cell 'relu'"):
        mutate(read_source("ex01_activations"), bad, "ex01_activations")
