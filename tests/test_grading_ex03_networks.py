"""ex03's test networks with planted units have the rates its checks rely on; an independent monitor passes.

Moved unchanged out of test_grading_layers.py (which now tests ex02's numpy layers only) for whoever converts
ex03 to host-side judges.
"""

import pytest
import torch

from course_lib.grading.exercises import ex03

torch.set_num_threads(1)



@pytest.mark.parametrize("hidden", [False, True])
def test_ex03_planted_units_have_the_rates_the_checks_rely_on(hidden):
    net = ex03.flat_net(0, hidden)
    n = sum(len(b) for b in net.batches)
    first, second = ex03.reference_rates(net)
    assert first[0] == 0 and first[1] == 0  # negative bias; exactly 0 on every input (the kink)
    assert first[2] == 1 / n  # active on one example, which sits in the smaller last batch
    assert 0 < first[3] < ex03._wrong_rates(net, ex03._non_negative)[0][3]  # exactly 0 on every third input
    assert second[0] == 0 and second[1] == 0
    assert len(net.batches[-1]) < len(net.batches[0])
    nested = ex03.reference_rates(ex03.nested_net(0, hidden))
    assert nested[0][0] == 0 and nested[0][1] == 0 and len(nested) == 2


def independent_firing_rates(model, batches, active=lambda z: z > 0):
    """Firing rates kept per example by forward pre-hooks, then averaged (not the solution's counting)."""
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    seen = [[] for _ in relus]
    handles = [m.register_forward_pre_hook(lambda mod, args, i=i: seen[i].append(active(args[0])))
               for i, m in enumerate(relus)]
    with torch.no_grad():
        for b in batches:
            model(b)
    for h in handles:
        h.remove()
    return [torch.cat(a).double().mean(0) for a in seen]


def test_ex03_accepts_an_independent_monitor_and_names_the_kink_misconception():
    for hidden in (False, True):
        ex03.check_firing_rates(independent_firing_rates, seed=3, hidden=hidden)

    def non_negative(model, batches):
        return independent_firing_rates(model, batches, active=lambda z: z >= 0)

    with pytest.raises(AssertionError, match="a pre-activation >= 0 was counted as active"):
        ex03.check_firing_rates(non_negative, seed=3)


def test_ex03_dead_fraction_pools_units_and_names_a_threshold():
    ex03.check_dead_fraction(lambda rates: ex03._pooled(rates), seed=0)
    with pytest.raises(AssertionError, match="active on some examples was counted as dead"):
        ex03.check_dead_fraction(lambda rates: sum(int((r < 0.05).sum()) for r in rates) / sum(map(len, rates)), 0)
