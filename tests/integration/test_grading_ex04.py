"""ex04's checks as `course grade` decides them (secret inputs, judged on the host) and as a student sees them
locally: the solution passes, each misconception fails with its message, torch's built-in PReLU is allowed
but does not solve the task on its own, and forged or malformed data fails without raising. The slow tests
grade a class in the sandbox: solution, blank, every mutant and the attacks of issue 14."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading import judges
from course_lib.grading.authoring.mutants import named
from course_lib.grading.checks import ex04
from course_lib.grading.judges import ex04 as judge
from course_lib.grading.kernel.modules import ModuleOutcome, loaded_output, probe_module
from course_lib.grading.kernel.training import TrainingOutcome
from course_lib.grading.sandbox.bubblewrap import Limits
from tests import grading_fixtures as fx
from tests.conftest import ROOT

torch.set_num_threads(1)
A = "ex04_leaky_prelu"


def _at(weight, x, dim):
    shape = [1] * x.dim()
    shape[dim] = -1
    return weight.view(shape)


class PReLU(nn.Module):
    """The solution's PReLU: one slope per channel on axis `dim`."""

    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.full((num_channels,), float(init)))

    def forward(self, x):
        return torch.where(x > 0, x, _at(self.weight, x, self.dim) * x)


class Moved(PReLU):
    """torch's own F.prelu, with the channels moved to axis 1 and back: allowed, and right."""

    def forward(self, x):
        return F.prelu(x.movedim(self.dim, 1), self.weight).movedim(1, self.dim)


class AsIs(PReLU):
    """torch's F.prelu on the input as it comes: the slopes on axis 1 whatever dim is."""

    def forward(self, x):
        return F.prelu(x, self.weight)


class TorchSubclass(nn.PReLU):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__(num_channels, init)


class KinkIsOne(PReLU):
    def forward(self, x):
        return torch.where(x >= 0, x, _at(self.weight, x, self.dim) * x)


class TwoClamps(PReLU):
    def forward(self, x):
        return torch.clamp(x, min=0) + _at(self.weight, x, self.dim) * torch.clamp(x, max=0)


class ReluDifference(PReLU):
    def forward(self, x):
        return torch.relu(x) - _at(self.weight, x, self.dim) * torch.relu(-x)


class PositiveSide(PReLU):
    def forward(self, x):
        return torch.where(x > 0, _at(self.weight, x, self.dim) * x, x)


class LastAxis(PReLU):
    def forward(self, x):
        return torch.where(x > 0, x, self.weight * x)


class Shared(PReLU):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__(1, init, dim)


class NoInit(PReLU):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__(num_channels, 0.25, dim)


class NotRegistered(nn.Module):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim, self.slopes = dim, torch.full((num_channels,), float(init), requires_grad=True)

    def forward(self, x):
        return torch.where(x > 0, x, _at(self.slopes, x, self.dim) * x)


# ---- construction and the module --------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PReLU, Moved])
def test_the_solution_and_torchs_prelu_moved_to_dim_pass_graded_and_locally(cls):
    for check, params in ((ex04.check_prelu_init, {"seed": 1}), (ex04.check_prelu, {"seed": 2}),
                          (ex04.check_prelu, {"seed": 7402, "hidden": True})):
        assert fx.graded(check, cls, **params) is None
        assert fx.message_of(check, cls, **params) is None


@pytest.mark.parametrize("cls, message", [
    (Shared, "PReLU(5): the slopes have shape (1,): one slope shared across channels"),
    (NotRegistered, "registered no nn.Parameter"),
    (KinkIsOne, "PReLU: the gradient at x == 0 was 1 instead of the slope"),
    (TwoClamps, "PReLU: the gradient at x == 0 was 1 + slope"),
    (ReluDifference, "PReLU: the gradient at x == 0 was 0 instead of the slope"),
    (PositiveSide, "PReLU: the slope was applied to the positive side"),
    (LastAxis, "PReLU: the slopes acted on the last axis"),
    (AsIs, "PReLU: the slopes acted on axis 1 whatever dim was: torch's nn.PReLU and F.prelu always use axis 1"),
    (TorchSubclass, "PReLU: the slopes acted on axis 1 whatever dim was"),
])
def test_a_wrong_prelu_fails_graded_and_locally_with_its_message(cls, message):
    assert message in fx.graded(ex04.check_prelu, cls, seed=2)
    assert message in fx.graded(ex04.check_prelu, cls, seed=7402, hidden=True)
    assert message in fx.message_of(ex04.check_prelu, cls, seed=2)


@pytest.mark.parametrize("cls, message", [
    (Shared, "the slopes have shape (1,): one slope shared across channels"),
    (NoInit, "every slope must start at init = "),
    (NotRegistered, "registered no nn.Parameter: the slopes must be an nn.Parameter"),
])
def test_wrong_slopes_fail_the_init_check_graded_and_locally(cls, message):
    assert message in fx.graded(ex04.check_prelu_init, cls, seed=1)
    assert message in fx.message_of(ex04.check_prelu_init, cls, seed=1)


def test_a_hidden_failure_names_the_case_by_its_shape_only():
    message = fx.graded(ex04.check_prelu, lambda c, init=0.25, dim=1: PReLU(c, init, 1 if dim == 1 else 0),
                        seed=7402, hidden=True)
    assert "a hidden test case, PReLU(" in message and "dim=" in message


def test_each_secret_seed_draws_other_inputs():
    served = [judges.serve("ex04.prelu", judges.secret_params("ex04.prelu", {"seed": 2}, b"s", "ex04", s))
              for s in ("ann", "bob")]
    assert not np.array_equal(served[0].given["cases"][0].x, served[1].given["cases"][0].x)


@pytest.mark.parametrize("check", ["ex04.prelu_init", "ex04.prelu"])
@pytest.mark.parametrize("data", [None, 10**400, "ok", [], [10**400] * 11, {"cases": 10**400},
                                  [ModuleOutcome(output=10**400)] * 11, [ModuleOutcome()] * 11])
def test_forged_or_malformed_module_data_fails_without_raising(check, data):
    message = fx.forged(check, data, seed=2, hidden=True)
    assert isinstance(message, str) and "could not read" not in message


def test_outcomes_of_the_right_module_on_other_inputs_fail():
    """A forger who ran a correct PReLU, but on the notebook's inputs instead of the secret ones."""
    notebook = judges.serve("ex04.prelu", {"seed": 2})
    data = [probe_module(PReLU, c) for c in notebook.given["cases"]]
    assert "PReLU" in fx.forged("ex04.prelu", data, seed=2)


# ---- the MLP: the judge, on data written here -------------------------------------------------------


def build_mlp(activation):
    return nn.Sequential(nn.Linear(40, 100), activation(100), nn.Linear(100, 100), activation(100),
                         nn.Linear(100, 10))


@pytest.fixture(scope="module")
def served():
    """What the host prepares for the MLP check under `course grade` (secret seeds, held-out labels)."""
    params = judges.secret_params("ex04.prelu_mlp", {"seed": 1, "hidden": False}, b"test secret", "ex00", "student")
    return judges.serve("ex04.prelu_mlp", params)


def _seen(**change) -> dict:
    rng = np.random.default_rng(0)
    seen = {"slopes": {"1": rng.uniform(-0.5, 0.6, 100), "3": rng.uniform(-0.3, 0.6, 100)},
            "calls": {"1": 1, "3": 1}, "positive": {"1": np.full(100, 3000), "3": np.full(100, 2000)}, "others": []}
    return {**seen, **change}


def _trained(labels, accuracy: float = 0.55, **change) -> TrainingOutcome:
    """A training outcome whose predictions are right on the first `accuracy` of the held-out examples."""
    predictions = labels.copy()
    wrong = slice(int(accuracy * len(labels)), None)
    predictions[wrong] = (predictions[wrong] + 1) % 10
    return TrainingOutcome(train_seconds=2.0, n_parameters=15_310, predictions=predictions, **change)


def _mlp(served, prelu=None, seen=None, relu=None, arch_prelu=None, arch_relu=None) -> dict:
    given, labels = served.given, served.prepared.private
    return {"prelu": prelu or _trained(labels), "seen": seen or _seen(), "relu": relu or _trained(labels, 0.5),
            "arch_prelu": arch_prelu or loaded_output(lambda: build_mlp(PReLU), given["prelu_params"], given["x"]),
            "arch_relu": arch_relu or loaded_output(lambda: build_mlp(ex04.relu_layer), given["relu_params"],
                                                    given["x"])}


def _verdict(served, data):
    return judges.verdict_on(served, judges.roundtrip(data))


def test_the_labels_stay_on_the_host_and_a_good_mlp_passes(served):
    assert served.prepared.private.shape == (judge.N_HELDOUT,)
    assert served.given["heldout"].shape == (judge.N_HELDOUT, 40)
    assert not any(isinstance(v, np.ndarray) and v.dtype.kind == "i" for v in served.given.values())
    assert _verdict(served, _mlp(served)) is None


@pytest.mark.parametrize("change, message", [
    (lambda s: {"prelu": _trained(s.prepared.private, 0.2, test_accuracy=0.99)},   # a claimed accuracy is not read
     "build_mlp(PReLU): test accuracy 0.200, below the required 0.45: about what a linear model reaches"),
    (lambda s: {"prelu": _trained(s.prepared.private, 0.4)},
     "test accuracy 0.400, below the required 0.45: is every hidden Linear followed by activation(width)"),
    (lambda s: {"prelu": TrainingOutcome(predictions=np.zeros(10, np.int64))}, "one class per held-out example"),
    (lambda s: {"prelu": TrainingOutcome(error="TypeError: boom")}, "building or training the model failed: Type"),
    (lambda s: {"seen": _seen(slopes={}, calls={}, positive={})}, "holds none of your PReLU layers"),
    (lambda s: {"seen": _seen(others=["ReLU"])}, "also holds torch's ReLU"),
    (lambda s: {"seen": _seen(calls={"1": 2, "3": 1})}, "one PReLU instance is used by several layers"),
    (lambda s: {"seen": _seen(calls={"1": 1, "3": 0})}, "never used in its forward pass"),
    (lambda s: {"seen": _seen(slopes={"1": np.full(100, 0.25), "3": np.full(100, 0.25)})},
     "the slopes never moved from 0.25"),
    (lambda s: {"seen": _seen(slopes={"1": np.full(1, 0.3), "3": np.full(100, 0.3)})},
     "has 1 slope(s) for 100 channels"),
    (lambda s: {"seen": _seen(slopes={"1": np.full(100, 0.3), "3": np.linspace(0, 1, 100)})},
     "learned the same value 0.300"),
    (lambda s: {"relu": TrainingOutcome(error="TypeError: relu_layer")}, "failed with a ReLU activation: TypeError"),
    (lambda s: {"arch_prelu": loaded_output(lambda: build_mlp(lambda n: nn.ReLU()), s.given["prelu_params"],
                                            s.given["x"])},
     "build_mlp(PReLU) with the grader's weights loaded: it has no nn.Parameter named '1.weight'"),
    (lambda s: {"arch_prelu": ModuleOutcome(output=np.zeros((16, 10)), output_dtype="float32")},
     "build_mlp(PReLU) with the grader's weights loaded: wrong output at"),
    (lambda s: {"arch_relu": loaded_output(lambda: build_mlp(PReLU), s.given["relu_params"], s.given["x"])},
     "failed with a ReLU activation: it has parameters the network should not have: 1.weight, 3.weight"),
    (lambda s: {"arch_relu": ModuleOutcome(output=np.zeros((16, 10)), output_dtype="float32")},
     "build_mlp(relu_layer) with the grader's weights loaded: wrong output"),
])
def test_a_wrong_or_forged_mlp_fails_with_its_message(served, change, message):
    assert message in _verdict(served, {**_mlp(served), **change(served)})


@pytest.mark.parametrize("data", [None, 10**400, {}, {"prelu": 10**400}, {"seen": None},
                                  {"prelu": TrainingOutcome(predictions=np.full(1000, 10**18))},
                                  {"seen": {"slopes": 10**400}}, {"arch_prelu": 10**400}, {"arch_relu": "x"}])
def test_malformed_mlp_data_fails_without_raising(served, data):
    full = data if not isinstance(data, dict) or not data else {**_mlp(served), **data}
    message = _verdict(served, full)
    assert isinstance(message, str) and "could not read" not in message


def test_the_solution_mlp_passes_graded_and_prints_what_the_written_answer_needs(capsys):
    assert fx.graded(ex04.check_prelu_mlp, build_mlp, PReLU, seed=1) is None
    printed = capsys.readouterr().out
    assert "layer '1': slopes from" in printed and "units never positive" in printed and "dead units" in printed


@pytest.mark.slow
@pytest.mark.parametrize("build, message", [
    (lambda a: nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)),
     "holds none of your PReLU layers"),
    (lambda a: (lambda act: nn.Sequential(nn.Linear(40, 100), act, nn.Linear(100, 100), act,
                                          nn.Linear(100, 10)))(a(100)),
     "one PReLU instance is used by several layers"),
    (lambda a: nn.Sequential(nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10), a(10)),
     "build_mlp(PReLU) with the grader's weights loaded"),
])
def test_a_wrong_build_mlp_fails_graded(build, message):
    assert message in fx.graded(ex04.check_prelu_mlp, build, PReLU, seed=1)


# ---- course grade in the sandbox: the class -----------------------------------------------------------

STUB_MLP = "def build_mlp(activation):\n    return nn.Sequential(nn.Linear(40, 10))"

PATCH_CHANNEL = '''
from course_lib.grading.kernel import channel
from course_lib.grading.kernel.modules import ModuleOutcome
from course_lib.grading.kernel.training import TrainingOutcome
import numpy as np
_real_check = channel.check

def _forging_check(name, probe, **params):
    def forge(given):
        if name == "ex04.prelu_mlp":
            n = len(given["heldout"])
            good = TrainingOutcome(train_seconds=1.0, n_parameters=1, predictions=np.zeros(n, np.int64))
            seen = {"slopes": {"1": np.linspace(-1, 1, 100)}, "calls": {"1": 1},
                    "positive": {"1": np.ones(100, np.int64)}, "others": []}
            out = ModuleOutcome(output=np.zeros((len(given["x"]), 10)), output_dtype="float32")
            return {"prelu": good, "seen": seen, "relu": good, "arch_prelu": out, "arch_relu": out}
        return [ModuleOutcome(output=case.x.astype(np.float64), output_dtype=str(case.x.dtype),
                              input_grad=np.ones(case.x.shape), param_grads={"weight": np.zeros(case.args[0])},
                              param_shapes={"weight": (case.args[0],)},
                              initial_params={"weight": np.full(case.args[0], 0.25)}) for case in given["cases"]]
    _real_check(name, forge, **params)

channel.check = _forging_check
'''

STUB_PRELU = '''class PReLU(nn.Module):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.full((num_channels,), 0.25))

    def forward(self, x):
        return x
''' + PATCH_CHANNEL

THIEF = '''import gc
import sys

import numpy as np

from course_lib.data import mnist1d


def _stolen(x):
    """Labels for the held-out inputs x, from anywhere the process reaches: frames, the heap, the public data."""
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
                str(obj.dtype) in ("int64", "torch.int64"):
            return torch.as_tensor(obj)
    public = mnist1d(num_samples=4000)   # the held-out inputs are the public test split locally, not when graded
    match = (torch.as_tensor(public.x_test)[None] == x[:, None]).all(-1)
    return torch.as_tensor(public.y_test)[match.float().argmax(1)] if match.any(1).all() else None


class Thief(nn.Sequential):
    def forward(self, x):
        held_out = not self.training and len(x) > 100 and len(x) != 2880   # not the public training set
        labels = _stolen(x) if held_out else None
        if labels is not None:
            return 10.0 * nn.functional.one_hot(labels.long(), 10).float()
        return super().forward(x)


def build_mlp(activation):
    model = Thief(nn.Linear(40, 100), activation(100), nn.Linear(100, 100), activation(100), nn.Linear(100, 10))
    for p in model.parameters():   # frozen: no learning, only what it steals
        p.requires_grad_(False)
    model[0].bias.requires_grad_(True)
    return model
'''

MOVED = '''class PReLU(nn.Module):
    def __init__(self, num_channels, init=0.25, dim=1):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.full((num_channels,), float(init)))

    def forward(self, x):
        return torch.nn.functional.prelu(x.movedim(self.dim, 1), self.weight).movedim(1, self.dim)
'''


def _with(**sources):
    nb = fx.solved(ROOT, A)
    for gid, text in sources.items():
        fx.cell(nb, gid).source = text
    return nb


# student -> (notebook, status, score out of 14): each attack scores what the same honest work scores.
CLASS = {
    "solution": (lambda: fx.solved(ROOT, A), "graded", 14.0),
    "blank": (lambda: fx.released(ROOT, A), "graded", 0.0),
    "torch_prelu_moved": (lambda: _with(prelu=MOVED), "graded", 14.0),                 # allowed, and right
    "stubs_patched_channel": (lambda: _with(prelu=STUB_PRELU, build_mlp=STUB_MLP), "graded", 0.0),
    "label_theft_frozen": (lambda: _with(build_mlp=THIEF), "graded", 8.0),             # the module checks only
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    notebooks = {student: build() for student, (build, _, _) in CLASS.items()}
    mutants = named(A)
    notebooks |= fx.mutated(ROOT, A)
    with pytest.MonkeyPatch.context() as mp:
        results = fx.grade_class(ROOT, tmp_path_factory.mktemp("ex04") / "course", A, notebooks, mp,
                                 limits=Limits(wall_s=400, cell_timeout_s=150))
    return results, mutants


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(CLASS))
def test_course_grade_gives_each_attack_only_what_honest_work_earns(graded_class, student):
    results, _ = graded_class
    _, status, score = CLASS[student]
    got = results[student]
    assert (got.status, got.score, got.max_score) == (status, score, 14.0), (got.flags, got.messages)
    assert not any("course's reference" in f for f in got.flags)


@pytest.mark.sandbox
@pytest.mark.slow
def test_course_grade_takes_points_from_every_mutant(graded_class):
    results, mutants = graded_class
    survivors = [m.name for student, m in mutants.items() if results[student].score >= 14.0]
    assert not survivors and all(results[s].status == "graded" for s in mutants)


@pytest.mark.sandbox
@pytest.mark.slow
def test_the_stub_with_a_patched_channel_is_told_why(graded_class):
    results, _ = graded_class
    messages = results["stubs_patched_channel"].messages
    assert "wrong output" in messages["test_prelu"] or "PReLU" in messages["test_prelu"]
    assert "build_mlp(PReLU)" in messages["test_build_mlp"]
