"""ex06's checks as `course grade` decides them (secret torch seed, held-out signals whose labels stay on the
host, the CPU budget read from outside, dead_fraction on planted networks) and as a student sees them locally.
The fast tests share one training of the solution per side; the slow ones grade a class in the sandbox:
solution, blank, every mutant and the attacks of issue 14 (forged records, label theft, the course's reference,
CPU-budget dodges)."""

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import diagnostics
from course_lib.grading import judges
from course_lib.grading.authoring.mutants import named
from course_lib.grading.checks import ex06
from course_lib.grading.judges import dead_units
from course_lib.grading.judges import ex06 as judge
from course_lib.grading.kernel import planted
from course_lib.grading.kernel.budget import BudgetedRun, ConfigProbe
from course_lib.grading.kernel.training import TrainingOutcome
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT

torch.set_num_threads(1)
A = "ex06_capstone"
CONFIG = {"epochs": 15, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}


@pytest.fixture(scope="module")
def solution() -> dict:
    """The solution cells' build_model, training_config and dead_fraction, defined as in a notebook."""
    namespace = {"__name__": "__main__", "torch": torch, "nn": nn}
    nb = fx.solved(ROOT, A)
    for gid in ("design", "dead_fraction"):
        exec(fx.cell(nb, gid).source, namespace)  # noqa: S102 - the course's own solution
    return namespace


def _host() -> fx.Host:
    return fx.Host(A)


# ---- the solution passes, graded and locally ---------------------------------------------------------


def test_the_solutions_design_and_training_pass_graded_and_locally(solution):
    b, c = solution["build_model"], solution["training_config"]
    assert fx.graded(ex06.check_design, b, c, host=_host()) is None
    assert fx.message_of(ex06.check_design, b, c) is None
    for check in (ex06.check_accuracy, ex06.check_budget, ex06.check_bonus):  # one training per side
        assert fx.graded(check, b, c, seed=1, host=_host()) is None
    for check in (ex06.check_accuracy, ex06.check_budget, ex06.check_bonus):
        assert fx.message_of(check, b, c, seed=1) is None


@pytest.mark.parametrize("check, seed, hidden", [(ex06.check_dead_fraction, 1, False),
                                                 (ex06.check_dead_fraction, 7306, True),
                                                 (ex06.check_dead_fraction_cnn, 1, False),
                                                 (ex06.check_dead_fraction_cnn, 7308, True)])
def test_the_solutions_dead_fraction_passes_graded_and_locally(solution, check, seed, hidden):
    assert fx.graded(check, solution["dead_fraction"], seed=seed, hidden=hidden, host=_host()) is None
    assert fx.message_of(check, solution["dead_fraction"], seed=seed, hidden=hidden) is None


def _float32_dead_fraction(model, x):
    """The solution's count, returned as a float32 mean of a bool tensor (off the exact ratio by ~1e-8)."""
    fired = []
    hooks = [m.register_forward_hook(lambda m, args, out: fired.append(args[0] > 0)) for m in model.modules()
             if isinstance(m, nn.ReLU | nn.LeakyReLU | nn.PReLU)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    alive = torch.cat([a.reshape(len(a), a.shape[1], -1).any(dim=2).any(dim=0) for a in fired])
    return (~alive).float().mean()


@pytest.mark.parametrize("check, seed, hidden", [(ex06.check_dead_fraction, 7306, True),
                                                 (ex06.check_dead_fraction_cnn, 1, False)])
def test_a_float32_dead_fraction_passes(check, seed, hidden):
    assert fx.graded(check, _notebook(_float32_dead_fraction), seed=seed, hidden=hidden, host=_host()) is None


def _planted_dead(spec) -> tuple[int, int]:
    """(units planted dead: zero weights, bias <= 0; all units) of the layers before each activation."""
    layers = [args for name, args in spec if name in ("Linear", "Conv1d")][:-1]
    dead = sum(int(((a["weight"].reshape(len(a["weight"]), -1) == 0).all(1) & (a["bias"] <= 0)).sum())
               for a in layers)
    return dead, sum(len(a["bias"]) for a in layers)


@pytest.mark.parametrize("seed", range(5))
def test_the_planted_networks_have_at_least_their_planted_dead_units(seed):
    for spec, x in (planted.mlp(seed), planted.cnn(seed, np.random.default_rng(seed).normal(size=(1100, 20)))):
        dead, units = _planted_dead(spec)
        assert dead >= 3
        counted = diagnostics.dead_fraction(planted.build(spec), torch.as_tensor(x), dead_units.COUNTED)
        assert dead / units <= counted < 1.0


# ---- what enters the sandbox -------------------------------------------------------------------------


def test_the_labels_stay_on_the_host_and_each_student_trains_under_another_seed():
    params = {"seed": 1, "hidden": False}
    one = judges.serve("ex06.accuracy", judges.secret_params("ex06.accuracy", params, b"k", A, "ann"))
    two = judges.serve("ex06.budget", judges.secret_params("ex06.budget", params, b"k", A, "bob"))
    assert set(one.given) == {"draw", "train_seed", "heldout"} and one.given["heldout"].shape == (1000, 40)
    assert one.prepared.private.shape == (1000,)
    assert one.given["train_seed"] != two.given["train_seed"]
    assert np.array_equal(one.given["heldout"], two.given["heldout"])  # one held-out draw per class and seed
    public = ex06.data(ex06.TRAIN_DRAW)
    assert not (one.given["heldout"][:, None] == public.x_test[None]).all(-1).any()  # not the public test split


def test_each_secret_seed_plants_other_dead_units():
    params = {"seed": 1, "hidden": False}
    specs = [judges.serve("ex06.dead_fraction", judges.secret_params("ex06.dead_fraction", params, b"k", A, s))
             for s in ("ann", "bob")]
    weights = [s.given[0]["spec"][0][1]["weight"] for s in specs]
    assert not np.array_equal(*weights)


@pytest.mark.parametrize("check", ["ex06.dead_fraction", "ex06.dead_fraction_cnn"])
def test_no_answer_that_skips_the_count_passes_for_any_secret(check):
    """Each check holds a planted network and its twin with one more dead unit: the same shapes, other answers.
    A constant (0.0933 passed the CNN check for 1 secret in 4 before) or a guess from the architecture alone
    is wrong on one of the two, whatever the secret."""
    for student in [f"student{i}" for i in range(12)]:
        served = judges.serve(check, judges.secret_params(check, {"seed": 1, "hidden": False}, b"k", A, student))
        network, twin = served.given[:2]
        assert [np.shape(a.get("weight")) for _, a in network["spec"]] == \
            [np.shape(a.get("weight")) for _, a in twin["spec"]]
        answers = [dead_units.reference(planted.build(m["spec"]), torch.as_tensor(m["x"])) for m in (network, twin)]
        assert answers[0] != answers[1]
        for guess in answers:
            forged = {"borrows": False, "returned": [guess] * len(served.given)}
            assert judges.verdict_on(served, judges.roundtrip(forged)), (student, guess)


# ---- wrong work fails with its message ---------------------------------------------------------------


def _notebook(fn):
    """fn as if defined in a notebook cell (a function imported from elsewhere counts as borrowed)."""
    fn.__module__ = "__main__"
    return fn


def _dead_fraction(pre=lambda z, out: z > 0, per_channel=True, first=None):
    """A dead_fraction with one definition changed: pre(z, out) says where a unit is active."""
    def dead_fraction(model, x):
        fired = {}

        def record(module, args, output):
            active = pre(args[0], output)
            active = active.reshape(len(active), active.shape[1], -1) if per_channel else \
                active.reshape(len(active), -1, 1)
            fired[module] = active.any(dim=2).any(dim=0)
        hooks = [m.register_forward_hook(record) for m in model.modules()
                 if isinstance(m, nn.ReLU | nn.LeakyReLU | nn.PReLU)]
        with torch.no_grad():
            model(x if first is None else x[:first])
        for h in hooks:
            h.remove()
        return sum(int((~a).sum()) for a in fired.values()) / sum(a.numel() for a in fired.values())
    return _notebook(dead_fraction)


@pytest.mark.parametrize("wrong, mistake", [
    (_dead_fraction(lambda z, out: z >= 0), "pre-activation >= 0"),
    (_dead_fraction(lambda z, out: out != 0), "looked at the outputs"),
    (_dead_fraction(first=256), "counted over one batch"),
    (_dead_fraction(per_channel=False), "every (channel, position)"),
    (_notebook(lambda model, x: "0.2"), "returned a str, not a number"),
    (_notebook(lambda model, x: 1 / 0), "raised ZeroDivisionError"),
])
def test_a_wrong_dead_fraction_fails_graded_with_its_mistake_named(wrong, mistake):
    messages = [fx.graded(ex06.check_dead_fraction, wrong, seed=7306, hidden=True, host=_host()),
                fx.graded(ex06.check_dead_fraction_cnn, wrong, seed=1, host=_host())]
    assert any(m and mistake in m for m in messages), messages


def test_the_reference_monitor_is_refused_locally_too():
    from course_lib.diagnostics import DeadUnitMonitor

    def borrowed(model, x):
        with DeadUnitMonitor(model) as monitor:
            return monitor.observe(x).dead_fraction()
    assert fx.message_of(ex06.check_dead_fraction, borrowed, seed=1) == judge.BORROWS_MONITOR


@pytest.mark.parametrize("build, config, message", [
    (lambda: nn.Sequential(nn.Linear(40, 10), nn.Softmax(dim=1)), CONFIG, "probabilities"),
    (lambda: nn.Linear(30, 10), CONFIG, "fails on a batch of MNIST-1D signals"),
    (lambda: 3, CONFIG, "returned a int, not a torch nn.Module"),
    (lambda: nn.Linear(40, 10), {**CONFIG, "epochs": 100}, "epochs=100"),
    (lambda: nn.Linear(40, 10), {**CONFIG, "optimizer": "rmsprop"}, "optimizer='rmsprop'"),
])
def test_a_wrong_design_fails_graded_and_locally(build, config, message):
    assert message in fx.graded(ex06.check_design, build, lambda: config, host=_host())
    assert message in fx.message_of(ex06.check_design, build, lambda: config)


def _run(predictions, cpu: float = 3.0, **change) -> dict:
    outcome = TrainingOutcome(train_seconds=cpu, n_parameters=5210, predictions=predictions, **change)
    return {"config": ConfigProbe(sorted(CONFIG.items())), "run": BudgetedRun(outcome, cpu), "outputs": None}


@pytest.fixture(scope="module")
def served() -> judges.Served:
    params = judges.secret_params("ex06.budget", {"seed": 1, "hidden": False}, b"k", A, "ann")
    return judges.serve("ex06.budget", params)


def test_the_budget_is_the_hosts_figure_when_there_is_one(served):
    right = _run(served.prepared.private.copy())
    assert judges.verdict_on(served, right) is None  # locally: the kernel's 3.0 s
    ok = ex06.BUDGET_S + judge.ALLOWANCE_S - 0.5
    assert judges.verdict_on(served, right, {"host_cpu_seconds": ok}) is None
    message = judges.verdict_on(served, right, {"host_cpu_seconds": ok + 1.0})
    assert "measured by the grader from outside" in message and "over the budget of 12 s" in message
    hidden = judges.Served(served.check, {**served.params, "hidden": True}, served.prepared)
    assert judges.verdict_on(hidden, right, {"host_cpu_seconds": ok + 1.0}) is None  # two trainings by then


@pytest.mark.parametrize("data, message", [
    (lambda y: _run(np.zeros_like(y)), "test accuracy 0.1"),
    (lambda y: _run(y[:10]), "one class per held-out example"),
    (lambda y: _run(y, error="TypeError: boom"), "building or training the model failed: TypeError"),
    (lambda y: {**_run(y), "run": BudgetedRun(TrainingOutcome(error="OverBudget: x"), 24.5, True)}, "stopped"),
    (lambda y: {**_run(y), "config": ConfigProbe([("epochs", 500)])}, "outside the allowed limits"),
    (lambda y: None, "cannot read"), (lambda y: 10**400, "cannot read"), (lambda y: {**_run(y), "run": 7}, "read"),
])
def test_wrong_or_forged_training_data_fails_without_raising(served, data, message):
    assert message in judges.verdict_on(served, judges.roundtrip(data(served.prepared.private.copy())))


@pytest.mark.parametrize("data", [None, 10**400, {"returned": [0.123]}, {"returned": [10**400]},
                                  {"returned": [float("nan")]}, {"returned": [0.3, 0.3]}, {"returned": "x"}])
def test_forged_dead_fraction_data_fails_without_raising(data):
    message = fx.forged("ex06.dead_fraction", data, seed=1)
    assert message and "dead_fraction" in message


# ---- course grade in the sandbox: the class -----------------------------------------------------------

BURN = """import time as _time

_clock = _time.process_time  # kept before anything patches the clock


def _burn(seconds):
    \"\"\"Spend `seconds` of CPU time: the cost of a bigger design, without training one in the test's time.\"\"\"
    start = _clock()
    while _clock() - start < seconds:
        pass
"""
OVER = 16  # CPU seconds a design spends on top of the solution's: over the 12 s budget, under the 24 s stop
SOLUTION_MODEL = """

class Slow(nn.Sequential):
    \"\"\"The solution's CNN with OVER more CPU seconds of work in its first training step: a bigger design.\"\"\"

    spent = False

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and not self.spent:
            self.spent = True
            _spend()
        return super().forward(x)


def build_model():
    return Slow(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(125, 10))


def training_config():
    return {"epochs": 15, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}
"""
# The honest over-budget design: it spends its CPU where it trains.
SLOW = BURN + f"\n\ndef _spend():\n    _burn({OVER})\n" + SOLUTION_MODEL
# The same cost, hidden from every in-process clock (patched once the cell has run).
PATCHED_CLOCK = SLOW + "\n_time.process_time = lambda: 0.0\n_time.perf_counter = lambda: 0.0\n"
# The same cost in a forked child that the training waits for.
FORKED = BURN + f"""

def _spend():
    import os
    child = os.fork()
    if child == 0:
        _burn({OVER})
        os._exit(0)
    os.waitpid(child, 0)
""" + SOLUTION_MODEL
# The same cost paid in the answer cell, "pretraining" before any test runs (once for the visible tests' model and
# once for the hidden tests'), so that no training the tests start costs more than the solution's.
PRETRAINED = BURN + f"\n_burn({2 * OVER})\n\n\ndef _spend():\n    pass\n" + SOLUTION_MODEL

PATCH_CHANNEL = '''
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.budget import BudgetedRun, ConfigProbe
from course_lib.grading.kernel.training import TrainingOutcome
import numpy as np
_real_check = channel.check

def _forging_check(name, probe, **params):
    def forge(given):
        if isinstance(given, list):
            return {"borrows": False, "returned": [0.2] * len(given)}
        if "heldout" not in given:
            return {"config": ConfigProbe([("epochs", 5), ("lr", 0.01), ("optimizer", "adam"), ("batch_size", 32)]),
                    "uses_cnn1d": False, "failed": None, "shape": [7, 10], "output": np.zeros((7, 10))}
        outcome = TrainingOutcome(train_seconds=1.0, n_parameters=1,
                                  predictions=np.arange(len(given["heldout"])) % 10)
        return {"config": ConfigProbe([("epochs", 5), ("lr", 0.01), ("optimizer", "adam"), ("batch_size", 32)]),
                "run": BudgetedRun(outcome, 1.0), "outputs": None}
    _real_check(name, forge, **params)

channel.check = _forging_check
'''
STUB_DESIGN = '''def build_model():
    raise NotImplementedError()


def training_config():
    return {"epochs": 5, "lr": 0.01, "optimizer": "adam", "batch_size": 32}
''' + PATCH_CHANNEL
STUB_DEAD = "def dead_fraction(model, x):\n    return 0.2\n"

THIEF = '''import gc
import sys

import numpy as np

from course_lib.grading.checks import ex06 as _ex06


def _stolen(x):
    """Labels for the inputs x, from anywhere the process reaches: frames, the heap, the public draws."""
    n = len(x)
    frame = sys._getframe()
    while frame is not None:
        for value in frame.f_locals.values():
            if isinstance(value, (np.ndarray, torch.Tensor)) and tuple(value.shape) == (n,) and \\
                    str(value.dtype) in ("int64", "torch.int64"):
                return torch.as_tensor(value)
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, (np.ndarray, torch.Tensor)) and tuple(obj.shape) == (n,) and \\
                str(obj.dtype) in ("int64", "torch.int64") and obj is not None:
            return torch.as_tensor(obj)
    for draw in (1, 13):
        public = _ex06.data(draw)
        match = (torch.as_tensor(public.x_test)[None] == x[:, None]).all(-1)
        if match.any(1).all():
            return torch.as_tensor(public.y_test)[match.float().argmax(1)]
    return None


class Thief(nn.Sequential):
    """Learns nothing: outputs the stolen labels, or the same logits for every signal when it finds none."""

    def forward(self, x):
        labels = _stolen(x) if not self.training and len(x) > 100 and len(x) != 3200 else None
        if labels is not None:
            return 10.0 * nn.functional.one_hot(labels.long(), 10).float()
        return super().forward(x) * 0.0 + self[0].bias


def build_model():
    model = Thief(nn.Linear(40, 10))
    model[0].weight.requires_grad_(False)
    return model


def training_config():
    return {"epochs": 1, "lr": 1e-3, "optimizer": "adam", "batch_size": 512}
'''
BORROW_MONITOR = '''import importlib


def dead_fraction(model, x):
    monitor = getattr(importlib.import_module("course_lib." + "diagnostics"), "DeadUnit" + "Monitor")(model)
    with monitor:
        return monitor.observe(x).dead_fraction()
'''
BORROW_CNN = '''from course_lib import cnn as _cnn


def build_model():
    return getattr(_cnn, "cnn" + "1d")()


def training_config():
    return {"epochs": 15, "lr": 1e-2, "optimizer": "adam", "batch_size": 32}
'''


def _with(**sources):
    nb = fx.solved(ROOT, A)
    for gid, text in sources.items():
        fx.cell(nb, gid).source = text
    return nb


REFERENCE = "uses the course's reference (course_lib."
BUDGET_CELLS = {"test_budget", "test_bonus", "test_bonus_hidden"}
# student -> (notebook, status, score out of 25, flag, the test cells that fail)
CLASS = {
    "solution": (lambda: fx.solved(ROOT, A), "graded", 25.0, None, set()),
    "blank": (lambda: fx.released(ROOT, A), "graded", 0.0, None, None),
    "over_budget": (lambda: _with(design=SLOW), "graded", 18.0, None, BUDGET_CELLS),
    "patched_clock": (lambda: _with(design=PATCHED_CLOCK), "graded", 18.0, None, BUDGET_CELLS),
    "forked_child": (lambda: _with(design=FORKED), "graded", 18.0, None, BUDGET_CELLS),
    "pretrained_in_answer_cell": (lambda: _with(design=PRETRAINED), "graded", 18.0, None, BUDGET_CELLS),
    "stubs_patched_channel": (lambda: _with(design=STUB_DESIGN, dead_fraction=STUB_DEAD), "graded", 0.0, None, None),
    "label_theft": (lambda: _with(design=THIEF), "graded", 9.0, None, None),  # dead_fraction's points only
    "borrow_monitor": (lambda: _with(dead_fraction=BORROW_MONITOR), "flagged", 16.0,
                       REFERENCE + "diagnostics.DeadUnitMonitor)", None),
    "borrow_cnn1d": (lambda: _with(design=BORROW_CNN), "flagged", 9.0, REFERENCE + "cnn.cnn1d)", None),
}


def _graded(folder, notebooks: dict) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        return fx.grade_class(ROOT, folder / "course", A, notebooks, mp, limits=Limits(wall_s=400, cell_timeout_s=150))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The attacks and controls (apart from the mutants, so that the attacks can also run without root alone:
    tests/integration/test_unprivileged.py)."""
    return _graded(tmp_path_factory.mktemp("ex06"), {student: build() for student, (build, *_) in CLASS.items()})


@pytest.fixture(scope="module")
def graded_mutants(tmp_path_factory):
    mutants = named(A)
    return _graded(tmp_path_factory.mktemp("ex06-mutants"), fx.mutated(ROOT, A)), mutants


@pytest.mark.attack
@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_course_grade_gives_each_attack_only_what_honest_work_earns(graded_class, student):
    results = graded_class
    _, status, score, flag, failing = CLASS[student]
    got = results[student]
    assert (got.status, got.score, got.max_score) == (status, score, 25.0), (got.flags, got.messages)
    assert [f for f in got.flags if "course's reference" in f] == ([flag] if flag else [])
    if failing is not None:
        assert set(got.messages) == failing, got.messages
    if failing and failing <= BUDGET_CELLS:
        assert "measured by the grader from outside" in got.messages["test_budget"]


@pytest.mark.sandbox
@pytest.mark.slow
def test_course_grade_takes_points_from_every_mutant(graded_mutants):
    results, mutants = graded_mutants
    survivors = [m.name for student, m in mutants.items() if results[student].score >= 25.0]
    assert not survivors
    expected = {s: "flagged" if "the reference" in m.name else "graded" for s, m in mutants.items()}
    assert {s: results[s].status for s in mutants} == expected, {s: results[s].messages for s in mutants}
