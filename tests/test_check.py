"""`course check` on every assignment: the solution earns every autograded point, the untouched student
version earns none, and every mutant (a plausible wrong solution) loses points."""

import pytest

from course_lib.grading.check import Mutant, format_table, load_mutants, mutate
from course_lib.grading.sources import SourceError, assignments, read_source
from tests import grading_fixtures as fx


@pytest.mark.slow
@pytest.mark.parametrize("assignment", assignments())
def test_solution_full_blank_zero_every_mutant_killed(assignment):
    result = fx.checked(assignment)
    print(format_table([result]))
    assert result.solution.max_points > 0
    assert result.solution.points == result.solution.max_points, result.solution.failed_tests
    assert result.blank.points == 0
    assert load_mutants(assignment), f"{assignment} has no mutants.toml"
    survivors = [name for name in result.mutants if name not in result.killed]
    assert not survivors


def test_a_mutant_whose_text_is_not_in_its_cell_is_a_clear_error():
    bad = Mutant("typo", "relu", "np.maximum(x, 1)", "x")
    with pytest.raises(SourceError, match="mutant 'typo': the text to replace must occur exactly once in cell 'relu'"):
        mutate(read_source("ex01_activations"), bad, "ex01_activations")
