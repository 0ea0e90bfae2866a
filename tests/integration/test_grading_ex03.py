"""ex03 under the new design: the kernel builds the test networks and rate lists from the given seed and hands
back the student's results, or exports the student's model (modelspec); the host judges, with references,
misconceptions, the training and the labels on its side only. The solution passes locally and graded; forged,
garbled or huge data fails without raising; a forged setting passes only if it is one that does what the
exercise asks. The slow tests grade a class with `course grade` (bubblewrap, secret seeds): the solution
earns full marks, the blank 0, every mutant loses points, and no attack earns more than its honest work."""

import contextlib
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.grading import judges
from course_lib.grading.authoring.mutants import load_mutants, mutate
from course_lib.grading.authoring.sources import grade_id, is_answer, read_source
from course_lib.grading.checks import ex03
from course_lib.grading.checks.ex03 import RatesProbe, Setting
from course_lib.grading.judges import ex03 as judge
from course_lib.grading.kernel import modelspec
from course_lib.grading.sandbox import library
from course_lib.grading.sandbox.bubblewrap import Limits
from course_lib.nn import mlp
from tests import grading_fixtures as fx
from tests.conftest import ROOT

torch.set_num_threads(1)
A = "ex03_dead_neurons"

# ---- the solution's answers -----------------------------------------------------------------------------


def firing_rates(model, batches, active=lambda z: z > 0, remove=True):
    """The solution's monitor: forward hooks count active examples per unit over every batch."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    counts = [0] * len(relus)

    def make_hook(i):
        def hook(module, args, output):
            counts[i] = counts[i] + active(args[0]).sum(dim=0)
        return hook

    handles = [m.register_forward_hook(make_hook(i)) for i, m in enumerate(relus)]
    with torch.no_grad():
        for x in batches:
            model(x)
    if remove:
        for handle in handles:
            handle.remove()
    return [c.double() / sum(len(x) for x in batches) for c in counts]


def dead_fraction(rates):
    return sum(int((r == 0).sum()) for r in rates) / sum(len(r) for r in rates)


def provoke_death():
    return lambda: mlp([2, 64, 64, 2]), 0.3


def _batchnorm_net():
    return nn.Sequential(nn.Linear(2, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 2))


def prevent_death():
    return _batchnorm_net, 1e-2


PROVOKE = dict(threshold=0.30)
PREVENT = dict(max_dead=0.01, threshold=0.92)


# ---- firing rates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [dict(seed=1), dict(seed=7501, hidden=True)])
def test_the_solutions_monitor_passes_locally_and_graded(params):
    assert fx.message_of(ex03.check_firing_rates, firing_rates, **params) is None
    assert fx.graded(ex03.check_firing_rates, firing_rates, **params) is None


def test_the_sandbox_gets_a_seed_and_hands_back_rates_only():
    host = fx.Host()
    fx.graded(ex03.check_firing_rates, firing_rates, host=host, seed=1)
    [served], [data] = host.served, host.data
    assert served.given == {"seed": served.params["seed"], "hidden": False} and served.params["seed"] != 1
    assert [type(p) for p in data] == [RatesProbe, RatesProbe]


def _probes(seed: int, hidden: bool = False, rates=judge.reference_rates) -> list[RatesProbe]:
    """What a probe hands back for a monitor computing `rates(net)` on the grader's networks for `seed`."""
    return [RatesProbe([np.asarray(r, np.float64) for r in rates(build(seed, hidden))]) for build in ex03.NETS]


def _secret(check: str, **params) -> int:
    """The seed the host gives `check` in fx.forged."""
    return judges.serve(check, judges.secret_params(check, params, b"test secret", "ex00", "student")).given["seed"]


@pytest.mark.parametrize("hidden", [False, True])
def test_rates_are_judged_from_data_alone_and_a_misconception_is_named(hidden):
    seed = _secret("ex03.firing_rates", seed=4, hidden=hidden)
    assert fx.forged("ex03.firing_rates", _probes(seed, hidden), seed=4, hidden=hidden) is None
    kink = _probes(seed, hidden, lambda net: judge.wrong_rates(net, judge.non_negative))
    assert fx.forged("ex03.firing_rates", kink, seed=4, hidden=hidden).startswith(
        "firing_rates: a pre-activation >= 0 was counted as active")
    assert fx.forged("ex03.firing_rates", _probes(seed + 1, hidden), seed=4, hidden=hidden).startswith(
        "firing_rates: wrong rates")  # the rates of other networks than the ones given


def _forge(edit):
    seed = _secret("ex03.firing_rates", seed=1)
    return edit(_probes(seed))


@pytest.mark.parametrize(("data", "expected"), [
    (lambda p: p[:1], "firing_rates: the check returned no results for the 2 test networks"),
    (lambda p: 10**400, "firing_rates: the check returned no results"),
    (lambda p: "rates", "firing_rates: the check returned no results"),
    (lambda p: [{"rates": p[0].rates}, p[1]], "firing_rates: the check returned no rates"),
    (lambda p: [RatesProbe(p[0].rates, hooks_left=10**400), p[1]], "firing_rates: the check returned no count"),
    (lambda p: [RatesProbe(p[0].rates, hooks_left=True), p[1]], "firing_rates: the check returned no count"),
    (lambda p: [RatesProbe(p[0].rates, hooks_left=2), p[1]], "firing_rates: left 2 hook(s) attached to the network"),
    (lambda p: [RatesProbe(error="raised KeyError: 3"), p[1]], "firing_rates: raised KeyError: 3"),
    (lambda p: [RatesProbe(p[0].rates[:1]), p[1]], "firing_rates: returned 1 rate vectors"),
    (lambda p: [RatesProbe([p[0].rates[0], p[0].rates[1] + 0.5]), p[1]],
     "firing_rates: wrong rates for 5 of 5 units of ReLU module 1 of the network 3 -> 6 -> 5 -> 2 (unit 0: "),
    (lambda p: [RatesProbe([10**400, 1]), p[1]], "firing_rates: entry 0 is a int"),
    (lambda p: [RatesProbe([np.full(6, np.inf), p[0].rates[1]]), p[1]], "firing_rates: wrong"),
    (lambda p: [p[0], RatesProbe()], "firing_rates: must return a list"),
])
def test_forged_garbled_or_huge_rates_fail_without_raising(data, expected):
    assert fx.forged("ex03.firing_rates", _forge(data), seed=1).startswith(expected)


def test_hooks_left_attached_and_a_monitor_returning_no_list_are_named():
    assert fx.message_of(ex03.check_firing_rates, lambda m, b: firing_rates(m, b, remove=False), seed=1).startswith(
        "firing_rates: left 2 hook(s) attached")
    assert fx.graded(ex03.check_firing_rates, lambda m, b: {"rates": 1}, seed=1) == (
        "firing_rates: must return a list with one 1-D tensor per nn.ReLU module, not a dict")


@pytest.mark.parametrize("hidden", [False, True])
def test_planted_units_have_the_rates_the_checks_rely_on(hidden):
    net = ex03.flat_net(0, hidden)
    n = sum(len(b) for b in net.batches)
    first, second = judge.reference_rates(net)
    assert first[0] == 0 and first[1] == 0  # negative bias; exactly 0 on every input (the kink)
    assert first[2] == 1 / n  # active on one example, which sits in the smaller last batch
    assert 0 < first[3] < judge.wrong_rates(net, judge.non_negative)[0][3]  # exactly 0 on every third input
    assert second[0] == 0 and second[1] == 0
    assert len(net.batches[-1]) < len(net.batches[0])
    nested = judge.reference_rates(ex03.nested_net(0, hidden))
    assert nested[0][0] == 0 and nested[0][1] == 0 and len(nested) == 2


def independent_firing_rates(model, batches, active=lambda z: z > 0):
    """Firing rates kept per example by forward pre-hooks, then averaged (not the solution's counting)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    seen = [[] for _ in relus]
    handles = [m.register_forward_pre_hook(lambda mod, args, i=i: seen[i].append(active(args[0])))
               for i, m in enumerate(relus)]
    with torch.no_grad():
        for b in batches:
            model(b)
    for h in handles:
        h.remove()
    return [torch.cat(a).double().mean(0) for a in seen]


def test_an_independent_monitor_passes_and_its_kink_misconception_is_named():
    for hidden in (False, True):
        assert fx.graded(ex03.check_firing_rates, independent_firing_rates, seed=3, hidden=hidden) is None
    non_negative = lambda m, b: independent_firing_rates(m, b, active=lambda z: z >= 0)  # noqa: E731
    assert fx.graded(ex03.check_firing_rates, non_negative, seed=3, hidden=True).startswith(
        "firing_rates: a pre-activation >= 0 was counted as active")


def test_building_the_networks_leaves_torchs_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ex03.flat_net(1), ex03.nested_net(1)
    assert torch.equal(torch.rand(3), expected)


# ---- dead fraction --------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [dict(seed=2), dict(seed=7502, hidden=True)])
def test_the_solutions_dead_fraction_passes_locally_and_graded(params):
    assert fx.message_of(ex03.check_dead_fraction, dead_fraction, **params) is None
    assert fx.graded(ex03.check_dead_fraction, dead_fraction, **params) is None


@pytest.mark.parametrize("answer", [
    lambda rates: float((torch.cat(rates) == 0).float().mean()),  # float32, as a student naturally writes it
    lambda rates: float(sum((r == 0).float().sum() for r in reversed(rates)) / sum(len(r) for r in rates)),
])
@pytest.mark.parametrize("params", [dict(seed=2), dict(seed=7502, hidden=True)])
def test_a_float32_or_reordered_dead_fraction_passes(answer, params):
    assert fx.graded(ex03.check_dead_fraction, answer, **params) is None


def test_a_dead_fraction_just_outside_the_tolerance_fails_with_full_precision():
    off = [(value + 2e-6, error) for value, error in _fractions(dead_fraction)]
    message = fx.forged("ex03.dead_fraction", off, seed=2)
    assert message.startswith(f"dead_fraction: returned {off[0][0]!r} on layers of widths [10, 30], expected ")


def _fractions(fn, seed: int = 2, hidden: bool = False) -> list:
    return [(fn(rates), None) for rates in ex03.rate_lists(_secret("ex03.dead_fraction", seed=seed, hidden=hidden),
                                                          hidden)]


def test_dead_fraction_misconceptions_are_named():
    averaged = _fractions(lambda rates: float(np.mean([float((r == 0).double().mean()) for r in rates])))
    assert "per-layer dead fractions were averaged" in fx.forged("ex03.dead_fraction", averaged, seed=2)
    threshold = _fractions(lambda rates: sum(int((r < 0.05).sum()) for r in rates) / sum(map(len, rates)))
    assert "active on some examples was counted as dead" in fx.forged("ex03.dead_fraction", threshold, seed=2)
    assert fx.graded(ex03.check_dead_fraction, lambda rates: 1 - dead_fraction(rates), seed=2) == (
        "dead_fraction: returned the fraction of live units, not dead ones")


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r[:1], "dead_fraction: the check returned no results for the 2 lists of rates"),
    (lambda r: 10**400, "dead_fraction: the check returned no results"),
    (lambda r: [(10**400, None), r[1]], "dead_fraction: the check returned no number"),
    (lambda r: [(True, None), r[1]], "dead_fraction: the check returned no number"),
    (lambda r: [("0.5", None), r[1]], "dead_fraction: the check returned no number"),
    (lambda r: [(1e308 * 10, None), r[1]], "dead_fraction: returned inf on layers of widths [10, 30]"),
    (lambda r: [r[0][0], r[1]], "dead_fraction: the check returned no result"),
    (lambda r: [(None, "TypeError: boom"), r[1]], "dead_fraction: TypeError: boom"),
    (lambda r: [(0.123, None), r[1]], "dead_fraction: returned 0.123 on layers of widths [10, 30], expected"),
])
def test_forged_or_garbled_fractions_fail_without_raising(edit, expected):
    assert fx.forged("ex03.dead_fraction", edit(_fractions(dead_fraction)), seed=2).startswith(expected)


def test_a_dead_fraction_returning_no_number_fails_with_its_type():
    assert fx.graded(ex03.check_dead_fraction, lambda rates: "half", seed=2) == (
        "dead_fraction: ValueError: returned a str, not a number")


# ---- provoking and preventing death: exported in the kernel, trained on the host --------------------------


def test_the_solutions_settings_pass_locally_and_graded():
    assert fx.message_of(ex03.check_provoke, provoke_death, seed=6, **PROVOKE) is None
    assert fx.graded(ex03.check_provoke, provoke_death, seed=6, **PROVOKE) is None
    assert fx.graded(ex03.check_prevent, prevent_death, seed=7407, hidden=True, **PREVENT) is None


def test_the_sandbox_gets_a_model_seed_and_hands_back_a_spec_and_a_rate():
    host = fx.Host()
    fx.graded(ex03.check_prevent, prevent_death, host=host, seed=6, **PREVENT)
    [served], [setting] = host.served, host.data
    assert served.given == {"seed": judge.model_seed(served.params["seed"])}  # not the moons' seed
    assert served.prepared.private == served.params["seed"] and served.params["seed"] != 6
    assert setting.lr == 1e-2 and setting.error is None
    torch.manual_seed(served.given["seed"])
    assert torch.equal(modelspec.build(setting.model)[0].weight, _batchnorm_net()[0].weight)


def _setting(make_model, lr: float) -> Setting:
    torch.manual_seed(0)
    return Setting(modelspec.export(make_model()), lr)


def test_a_forged_setting_passes_only_if_it_is_a_setting_that_does_it():
    assert fx.forged("ex03.provoke", _setting(lambda: mlp([2, 64, 64, 2]), 0.3), seed=6, **PROVOKE) is None
    assert fx.forged("ex03.prevent", _setting(_batchnorm_net, 1e-2), seed=6, **PREVENT) is None
    gentle = fx.forged("ex03.provoke", _setting(lambda: mlp([2, 64, 64, 2]), 0.01), seed=6, **PROVOKE)
    assert gentle.startswith("provoke_death: ") and gentle.endswith(
        "of the units are dead after training, fewer than the 30% required: what does one very large update do to "
        "a unit's bias?")


@pytest.mark.parametrize(("setting", "expected"), [
    (Setting(error="TypeError: nope"), "provoke_death: TypeError: nope"),
    (10**400, "provoke_death: the check returned no setting"),
    ({"model": None, "lr": 0.3}, "provoke_death: the check returned no setting"),
    (Setting({"layer": "Conv1d"}, 0.3), "provoke_death: the grader rebuilds only these torch layers"),
    (Setting({"layer": "Sequential", "children": [{"layer": "Linear", "args": {"in_features": 1000,
                                                                              "out_features": 1000, "bias": True},
                                                   "state": {}}]}, 0.3), "provoke_death: the model has more than"),
    (_setting(lambda: mlp([2, 64, 64, 2]), -1.0), "provoke_death: the learning rate must be a positive number"),
    (Setting(_setting(lambda: mlp([2, 64, 2]), 0.3).model, 10**400),
     "provoke_death: the learning rate must be a positive number"),
    (_setting(lambda: mlp([2, 64, 2], activation="tanh"), 0.3), "provoke_death: the model has no ReLU-family layer"),
    (_setting(lambda: mlp([2, 4, 2]), 0.3), "provoke_death: the network has 4 ReLU units; use at least 64"),
    (_setting(lambda: mlp([2, 64, 64, 2], bias=-3.0), 0.3),
     "provoke_death: 90% of the units are dead before any training (at most 20% may be)"),
    (_setting(lambda: mlp([2, 64, 64, 2]), 1e30), "provoke_death: training diverged"),
    (_setting(lambda: mlp([3, 64, 2]), 0.3), "provoke_death: running the model failed: RuntimeError: mat1 and mat2"),
    (_setting(lambda: nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1)), 0.3),
     "provoke_death: training the model failed: IndexError: Target 1 is out of bounds"),
])
def test_a_provoke_setting_that_is_not_one_fails_with_its_reason(setting, expected):
    assert fx.forged("ex03.provoke", setting, seed=6, **PROVOKE).startswith(expected)


def test_prevent_counts_accuracy_against_labels_the_sandbox_never_sees():
    born_dead = fx.forged("ex03.prevent", _setting(lambda: mlp([2, 64, 64, 2]), 1e-3), seed=6, **PREVENT)
    assert born_dead.startswith("prevent_death: ") and "were dead already at initialisation: born dead" in born_dead
    tiny_lr = fx.forged("ex03.prevent", _setting(_batchnorm_net, 1e-9), seed=6, **PREVENT)
    assert tiny_lr.startswith("prevent_death: test accuracy") and "near chance: did the network train" in tiny_lr


def test_a_model_the_grader_does_not_train_is_refused_in_the_kernel_with_one_line():
    class Net(nn.Module):
        def forward(self, x):
            return x

    message = fx.graded(ex03.check_provoke, lambda: (Net, 0.3), seed=6, **PROVOKE)
    assert message.startswith("provoke_death: the grader rebuilds only an nn.Sequential of these torch layers: "
                               "Sequential, Linear, ReLU") and message.endswith("found a Net")
    assert fx.graded(ex03.check_prevent, lambda: (_batchnorm_net, True), seed=6, **PREVENT) == (
        "prevent_death: ValueError: the learning rate must be a positive number, got True")
    assert fx.message_of(ex03.check_prevent, lambda: (lambda: mlp([2, 200, 200, 2]), 0.01), seed=6,
                         **PREVENT).startswith("prevent_death: the model has more than 20,000 parameters")


def test_the_exercise_text_names_every_layer_the_grader_trains():
    text = "\n".join(c.source for c in fx.released(ROOT, A).cells if c.cell_type == "markdown")
    assert all(f"`nn.{name}`" in text or f"`{name}`" in text for name in modelspec.ALLOWED)
    assert f"{modelspec.MAX_STATE:,} parameters, {modelspec.MAX_LAYERS} layers and widths of " \
           f"{modelspec.MAX_WIDTH:,}" in text


# ---- what the sandbox holds ------------------------------------------------------------------------------

IN_SANDBOX = """
import course_lib.grading.checks.ex03, course_lib.grading.kernel.modelspec
import course_lib.data, course_lib.nn, course_lib.train
try:
    from course_lib.diagnostics import DeadUnitMonitor
except ImportError as err:
    print(type(err).__name__, err)
try:
    import course_lib.sweeps
except ImportError as err:
    print(type(err).__name__)
try:
    from course_lib.regions import relu_patterns
except ImportError as err:
    print(type(err).__name__)
import course_lib.regions, course_lib.diagnostics, course_lib.kinks  # the rest of these modules is there
import course_lib.grading.judges
"""


@pytest.mark.slow
def test_the_sandbox_library_runs_the_checks_without_the_monitor_or_any_judge(tmp_path):
    """The kernel side needs no name ex03 cuts out (DeadUnitMonitor, sweeps' rates, relu_patterns); the judges
    are absent."""
    assert set(judges.written(A)) == {"course_lib.diagnostics", "course_lib.sweeps", "course_lib.regions"}
    built = library.build(judges.written(A), tmp_path / "libraries")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "course_lib").symlink_to(built)
    run = subprocess.run([sys.executable, "-c", IN_SANDBOX], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert run.stdout.splitlines() == [
        "ReferenceRemoved course_lib.diagnostics.DeadUnitMonitor is the course's own answer to this exercise and "
        "is not available when your work is graded: write your own", "ReferenceRemoved", "ReferenceRemoved"]
    assert "No module named 'course_lib.grading.judges'" in run.stderr.splitlines()[-1]


# ---- course grade, end to end (bubblewrap, secret seeds) ---------------------------------------------------

FORGED = '''
import numpy as np
from course_lib.grading.checks import ex03 as _ex03
from course_lib.grading.kernel import channel, modelspec
from course_lib.nn import mlp

torch.manual_seed(0)
FORGED = {  # what a submission hands back without computing anything
    "ex03.firing_rates": [_ex03.RatesProbe([np.full(6, 0.5), np.full(5, 0.5)])] * 2,
    "ex03.dead_fraction": [(10**400, None)] * 2,
    "ex03.provoke": _ex03.Setting(modelspec.export(mlp([2, 64, 64, 2], bias=-10.0)), 0.3),
    "ex03.prevent": 10**400,
}
_real_check = channel.check
channel.check = lambda name, probe, **params: _real_check(name, lambda given: FORGED[name], **params)


def firing_rates(model, batches):
    raise NotImplementedError
'''
STUB = "def {name}(*args):\n    raise NotImplementedError"
BORROWED_MONITOR = '''
def firing_rates(model, batches):
    from course_lib.diagnostics import DeadUnitMonitor

    with DeadUnitMonitor(model) as monitor:
        monitor.observe(batches)
        return list(monitor.firing_rates().values())
'''
BORROWED_BY_NAME = '''
import importlib


def firing_rates(model, batches):
    monitor = getattr(importlib.import_module("course_lib." + "diag" + "nostics"), "DeadUnit" + "Monitor")(model)
    return list(monitor.observe(batches).firing_rates().values())
'''
BORROWED_SWEEPS = '''
def dead_fraction(rates):
    import course_lib.sweeps as sweeps

    return sweeps.fraction_dead({str(i): r == 0 for i, r in enumerate(rates)})
'''
PATCHED_PROVOKE = '''
from course_lib.grading.checks import ex03 as _ex03
from course_lib.grading.kernel import modelspec


def provoke_death():
    return (lambda: mlp([2, 64, 64, 2])), 0.01  # trains gently: nothing dies


def _dead_on_arrival(setting_fn, seed):
    torch.manual_seed(seed)
    return _ex03.Setting(modelspec.export(mlp([2, 64, 64, 2], bias=-10.0)), 0.3)


_ex03.probe_setting = _dead_on_arrival  # the probe hands back another model than provoke_death's
'''
PATCHED_PREVENT = '''
import course_lib.train


def prevent_death():
    return (lambda: mlp([2, 4, 2])), 1e-2  # too few units


# what would have fooled a kernel that trained and measured: no training, ReLUs that never look dead
course_lib.train.fit = lambda *args, **kwargs: None
nn.ReLU.forward = lambda self, x: torch.nn.functional.leaky_relu(x, 0.5) + 1.0
'''


def _answers(source):
    """The released notebook with the answers of `source` (a solution notebook, maybe mutated) typed in."""
    answers = {grade_id(c): c.source for c in source.cells if is_answer(c)}
    nb = fx.released(ROOT, A)
    for c in nb.cells:
        if grade_id(c) in answers:
            c.source = "\n".join(line for line in answers[grade_id(c)].split("\n") if "SOLUTION" not in line)
    return nb


def _with(**sources):
    nb = fx.solved(ROOT, A)
    for gid, text in sources.items():
        fx.cell(nb, gid).source = text
    return nb


ATTACKS = {  # student -> (notebook, status, score: what the honest part of the work earns, flag)
    "forged_stubs": (lambda: _with(firing_rates=FORGED, **{cell: STUB.format(name=name) for cell, name in (
        ("dead_fraction", "dead_fraction"), ("provoke", "provoke_death"), ("prevent", "prevent_death"))}),
        "graded", 0, None),
    "borrows_monitor": (lambda: _with(firing_rates=BORROWED_MONITOR), "flagged", 18,
                        "uses the course's reference (course_lib.diagnostics.DeadUnitMonitor)"),
    "borrows_by_name": (lambda: _with(firing_rates=BORROWED_BY_NAME, dead_fraction=BORROWED_SWEEPS), "flagged", 14,
                        "uses the course's reference (course_lib.diagnostics.DeadUnitMonitor)"),
    "patched_probes": (lambda: _with(provoke=PATCHED_PROVOKE, prevent=PATCHED_PREVENT), "graded", 10, None),
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """Solution, blank, every mutant and every attack, graded together by `course grade`."""
    source = read_source(A, ROOT)
    notebooks = {"full": fx.solved(ROOT, A), "blank": fx.released(ROOT, A)}
    notebooks |= {f"mutant{i}": _answers(mutate(source, m, A)) for i, m in enumerate(load_mutants(A))}
    notebooks |= {student: make() for student, (make, *_) in ATTACKS.items()}
    with pytest.MonkeyPatch.context() as mp:
        yield fx.grade_class(ROOT, tmp_path_factory.mktemp("course"), A, notebooks, mp,
                             limits=Limits(wall_s=300, cell_timeout_s=90))


NBGRADER_SESSION_WARNINGS = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # as in test_grade


@pytest.mark.sandbox
@pytest.mark.slow
@NBGRADER_SESSION_WARNINGS
def test_course_grade_gives_the_solution_full_marks_the_blank_0_and_every_mutant_less(graded_class):
    assert (graded_class["full"].status, graded_class["full"].score, graded_class["full"].max_score) == (
        "graded", 24, 24), graded_class["full"].messages
    assert (graded_class["blank"].status, graded_class["blank"].score) == ("graded", 0)
    mutants = load_mutants(A)
    kept = [m.name for i, m in enumerate(mutants) if graded_class[f"mutant{i}"].score >= 24]
    assert not kept, f"mutants that lost no point under secret seeds: {kept}"


@pytest.mark.sandbox
@pytest.mark.slow
@NBGRADER_SESSION_WARNINGS
@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_no_attack_earns_more_than_its_honest_work(graded_class, student):
    _, status, score, flag = ATTACKS[student]
    result = graded_class[student]
    assert (result.status, result.score) == (status, score), (result.flags, result.messages)
    assert (flag in result.flags) if flag else not any("reference" in f for f in result.flags)


LEAKY_PREVENT = '''def prevent_death():
    def build_model():
        return nn.Sequential(nn.Linear(2, 64), nn.BatchNorm1d(64), nn.LeakyReLU(0.1),
                             nn.Linear(64, 64), nn.BatchNorm1d(64), nn.LeakyReLU(0.1), nn.Linear(64, 2))
    return build_model, 1e-2
'''


def test_the_locked_monitor_cell_runs_with_every_answer_the_instructions_allow():
    """prevent_death may use any ReLU-family layer; with LeakyReLU only, firing_rates (nn.ReLU modules) returns
    no rates, and the locked cell that prints them used to fail with ZeroDivisionError."""
    nb = _with(prevent=LEAKY_PREVENT)
    namespace: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for c in nb.cells:
            if c.cell_type == "code" and not (grade_id(c) or "").startswith("test_"):
                exec(c.source, namespace)  # noqa: S102 - the course's own cells and a typed-in answer
                if grade_id(c) == "readonly-19":
                    break
    assert "provoke: dead" in printed.getvalue() and "prevent: no nn.ReLU module" in printed.getvalue()
