"""ex06_capstone on the host: the design, the accuracy of the grader's training of it on held-out signals whose
labels never leave this side, the CPU budget as the host measured it, and dead_fraction on planted networks.

Under `course grade` the training checks of one notebook seed share a secret group seed: the kernel trains
the design once per seed (public training draw, secret torch seed) and predicts held-out MNIST-1D inputs
drawn for the class's secret seed. The budget is judged on the CPU seconds the host read from outside the
sandbox for the whole submission up to the end of the cell (every cell, thread and child process), less
ALLOWANCE_S for starting Python and importing the libraries: pretraining in another cell, a forked child
or a patched clock all count. Locally there is no outside view, and the kernel's own figure for the
training run is used.
"""

import numpy as np
import torch

from course_lib.data import mnist1d
from course_lib.grading.checks.ex06 import (
    BUDGET_S,
    LIMITS,
    NUM_SAMPLES,
    THRESHOLD_A,
    THRESHOLD_B,
    TRAIN_DRAW,
)
from course_lib.grading.judges import Judge, Prepared, dead_units
from course_lib.grading.judges.training import Hint, accuracy_verdict, heldout_mnist1d
from course_lib.grading.kernel import planted
from course_lib.grading.kernel.budget import BudgetedRun, ConfigProbe, config_verdict
from course_lib.grading.kernel.training import TrainingOutcome

WRITTEN = {"course_lib.diagnostics": ["DeadUnitMonitor", "dead_fraction"], "course_lib.cnn": ["cnn1d"]}

# CPU seconds of a graded solution notebook outside its training, up to the budget test: interpreter start,
# imports of torch and the course, the cells before. `course bench ex06_budget` measured 5.0 s (the host saw
# 7.7-8.0 s at the test's end for 2.8 s of training, load ~5 on 2 cores): 8 s covers it 1.6x.
ALLOWANCE_S = 8.0
N_HELDOUT = 1000
CHANCE_PLUS = 0.2  # the design check's accuracy: twice chance (a model that learns nothing gets ~0.1)
MALFORMED = "the check handed back data the grader cannot read (was a course function replaced?)"
SOFTMAX_OUTPUT = ("the model's outputs are probabilities (every row sums to 1): return the logits of the last "
                  "Linear layer; cross-entropy applies log-softmax itself, and a softmax before it squashes "
                  "the gradients")
USES_CNN1D = ("build_model uses course_lib.cnn.cnn1d, the reference CNN of notebook 06: design the layers "
              "yourself with torch.nn")
BORROWS_MONITOR = ("dead_fraction uses course_lib.diagnostics (DeadUnitMonitor), the reference it is compared "
                   "with: count the units yourself, with forward hooks")
READOUT_SIZE = ("Check the input size (40 features) and, after convolutions, the flattened size the read-out Linear "
                "layer expects")  # the layer sizes do not fit together
FAILED_STEP = {
    "build": "build_model() raised {}",
    "type": "build_model() returned a {}, not a torch nn.Module",
    "forward": f"the model fails on a batch of MNIST-1D signals, shape (7, 40): {{}}. {READOUT_SIZE}",
}
OVER_BUDGET = "use fewer epochs, larger batches or a smaller model"
HINTS = (
    Hint(lambda o: o.test_accuracy < 0.2,
         "accuracy near 0.1 (guessing): is the activation applied between the layers, and does the model return "
         "logits (not softmax probabilities fed to cross-entropy)? Too large a learning rate also ends here"),
    Hint(lambda o: o.test_accuracy < 0.42,
         "about what a linear classifier reaches on MNIST-1D (~0.32): is a nonlinearity applied between the "
         "layers?"),
    Hint(lambda o: True, "try more epochs, another learning rate, or a small 1-D CNN"),
)
BONUS_HINTS = (*HINTS[:2], Hint(lambda o: True, "an MLP stops near 0.6 on MNIST-1D; a small 1-D CNN (weights "
                                                "shared along the signal) gets there within the budget"))


def _graded(params: dict) -> bool:
    return params.get("shared_seed") is not None


def _name(what: str, params: dict) -> str:
    """How a message names the check: never by a secret seed."""
    if params.get("hidden"):
        return f"{what} (hidden test)"
    return f"{what} (grader's seed)" if _graded(params) else f"{what} (seed {params['seed']})"


def _torch_seed(params: dict, stream: int) -> int:
    return int(np.random.default_rng([params["seed"], stream]).integers(2**31))


def _looks_like_probabilities(out) -> bool:
    """True when `out` is (N, C) with every row non-negative and summing to 1: a softmax output, not logits."""
    return (isinstance(out, np.ndarray) and out.ndim == 2 and out.dtype.kind == "f" and bool((out >= 0).all())
            and bool(np.allclose(out.sum(axis=1), 1.0, rtol=1e-5, atol=1e-4)))


def _config_message(config) -> str | None:
    """None when the probed training_config() is within LIMITS (checked again here); else the message."""
    if not isinstance(config, ConfigProbe):
        return f"training_config(): {MALFORMED}"
    message = config_verdict("training_config()", config, LIMITS)
    if message is None or config.error:
        return message
    return f"{message}. Allowed: {LIMITS.describe()}"


# ---- the grader's training: accuracy, budget, bonus -------------------------------------------------


def _heldout(params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Graded: held-out signals for the class's secret seed (labels stay here). Locally: the test split of
    the notebook seed's draw, as the notebook's own numbers use."""
    if _graded(params):
        return heldout_mnist1d(params["shared_seed"], N_HELDOUT)
    split = mnist1d(num_samples=NUM_SAMPLES, seed=params["seed"], val=0)
    return split.x_test, split.y_test


def prepare_training(params: dict) -> Prepared:
    """Graded: train on the public draw TRAIN_DRAW under a torch seed from the secret seed, and predict
    held-out inputs whose labels stay here. Locally: the notebook seed's draw and seed, as `measure` trains."""
    x, y = _heldout(params)
    if _graded(params):
        return Prepared({"draw": TRAIN_DRAW, "train_seed": _torch_seed(params, 64), "heldout": x}, y)
    return Prepared({"draw": params["seed"], "train_seed": params["seed"], "heldout": x}, y)  # as `measure`


def _cpu_message(name: str, run: BudgetedRun, params: dict) -> str | None:
    """The budget: graded, the host's CPU seconds for the whole notebook so far less ALLOWANCE_S (hidden
    tests run after a second training, so they get two budgets); locally the kernel's figure for the run."""
    host = params.get("host_cpu_seconds")
    if host is None:
        if run.cpu_seconds <= BUDGET_S and not run.stopped:
            return None
        return f"{name}: building and training took {run.cpu_seconds:.1f} CPU seconds, over the {BUDGET_S:g} s " \
               f"budget: {OVER_BUDGET}"
    trainings = 2 if params.get("hidden") else 1
    if host - ALLOWANCE_S <= trainings * BUDGET_S:
        return None
    return (f"{name}: your notebook had used {host:.1f} CPU seconds when this test ended (measured by the grader "
            f"from outside: every cell, thread and child process). Less {ALLOWANCE_S:g} s for starting Python and "
            f"the imports, that is over the budget of {trainings * BUDGET_S:g} s for {trainings} training run"
            f"{'s' if trainings > 1 else ''}: {OVER_BUDGET}")


def _training_message(data, prepared: Prepared, params: dict, what: str, threshold: float, hints,
                      budget: bool) -> str | None:
    """data: {"config": ConfigProbe, "run": BudgetedRun or None (config outside LIMITS), "outputs": the
    trained model's outputs on 16 fixed signals or None}. Config, budget, then the accuracy counted here."""
    name = _name(what, params)
    if not (isinstance(data, dict) and {"config", "run", "outputs"} <= set(data)):
        return f"{name}: {MALFORMED}"
    message = _config_message(data["config"])
    run = data["run"]
    if message:
        return message
    if not (isinstance(run, BudgetedRun) and isinstance(run.outcome, TrainingOutcome)
            and isinstance(run.cpu_seconds, float)):
        return f"{name}: {MALFORMED}"
    if run.stopped:
        return f"{name}: training was stopped after {run.cpu_seconds:.1f} CPU seconds: {OVER_BUDGET}"
    if budget and (message := _cpu_message(name, run, params)):
        return message
    if not run.outcome.error and _looks_like_probabilities(data["outputs"]):
        hints = (Hint(lambda o: True, SOFTMAX_OUTPUT),)
    return accuracy_verdict(name, run.outcome, prepared.private, threshold, hints)


# ---- the design: its shape, and a training that learns something ----------------------------------


def prepare_design(params: dict) -> Prepared:
    """The training's inputs (the run is shared with the training checks of the same seed) and a batch."""
    prepared = prepare_training(params)
    rng = np.random.default_rng([params["seed"], 62])
    batch = {"x": rng.normal(size=(7, 40)).astype(np.float32), "torch_seed": _torch_seed(params, 63)}
    return Prepared({**prepared.given, **batch}, prepared.private)


def decide_design(data, prepared: Prepared, params: dict) -> str | None:
    """data: the training checks' data and {"uses_cnn1d": bool, "failed": (step, detail) or None, "shape":
    the output's shape on the grader's (7, 40) batch, "output": that output (7, 10) or None}. The design
    passes when its shape is right and the grader's training of it does better than chance (CHANCE_PLUS)."""
    if not (isinstance(data, dict) and {"config", "uses_cnn1d", "failed", "shape", "output"} <= set(data)):
        return f"build_model(): {MALFORMED}"
    message = _config_message(data["config"])
    if message:
        return message
    if data["uses_cnn1d"]:
        return USES_CNN1D
    if data["failed"]:
        step, detail = data["failed"]
        return FAILED_STEP[step].format(detail)
    if data["shape"] != [7, 10] or not isinstance(data["output"], np.ndarray) or data["output"].shape != (7, 10):
        return f"the model maps a (7, 40) batch to {data['shape']}; expected (7, 10): one logit per class"
    if _looks_like_probabilities(data["output"]):
        return SOFTMAX_OUTPUT
    return _training_message(data, prepared, params, "the design", CHANCE_PLUS, HINTS, budget=False)


def decide_accuracy(data, prepared: Prepared, params: dict) -> str | None:
    return _training_message(data, prepared, params, "MNIST-1D", THRESHOLD_A, HINTS, budget=False)


def decide_budget(data, prepared: Prepared, params: dict) -> str | None:
    return _training_message(data, prepared, params, "CPU budget", THRESHOLD_A, HINTS, budget=True)


def decide_bonus(data, prepared: Prepared, params: dict) -> str | None:
    return _training_message(data, prepared, params, "bonus tier", THRESHOLD_B, BONUS_HINTS, budget=True)


# ---- dead_fraction on planted networks --------------------------------------------------------------


def _and_twin(what: str, spec: list, x: np.ndarray, seed: int) -> list[tuple]:
    """A planted network and its twin with one more dead unit (see dead_units.twin): (what, spec, x) each."""
    other = dead_units.twin(spec, x, np.random.default_rng([seed, 66]))
    return [(what, spec, x), (f"{what} with one more dead unit", other, x)]


def _prepared(models: list[tuple]) -> Prepared:
    return Prepared([{"spec": spec, "x": x} for _, spec, x in models], [what for what, _, _ in models])


def prepare_dead_fraction(params: dict) -> Prepared:
    """An MLP with planted dead units and its twin (hidden: also a small 1-D CNN on random signals)."""
    models = _and_twin("a hand-built MLP", *planted.mlp(params["seed"]), params["seed"])
    if params.get("hidden"):
        rng = np.random.default_rng([params["seed"], 65])
        models.append(("a hand-built 1-D CNN", *planted.cnn(params["seed"], rng.normal(size=(1100, 20)))))
    return _prepared(models)


def prepare_dead_fraction_cnn(params: dict) -> Prepared:
    """A CNN the size of the solution's (25 channels per layer) with planted dead channels, and its twin, over
    MNIST-1D signals: graded, held-out signals of a secret draw; locally the training signals of the notebook's
    draw."""
    if _graded(params):
        x = heldout_mnist1d(params["shared_seed"], N_HELDOUT)[0]
    else:
        x = mnist1d(num_samples=NUM_SAMPLES, seed=params["seed"], val=0).x_train
    spec, x = planted.cnn(params["seed"], x, channels=25)
    return _prepared(_and_twin(f"a 1-D CNN with 75 channels on {len(x)} MNIST-1D signals", spec, x, params["seed"]))


def _returned_ok(value) -> bool:
    return isinstance(value, str) or (isinstance(value, float) and np.isfinite(value))


def decide_dead_fraction(data, prepared: Prepared, params: dict) -> str | None:
    """data: {"borrows": bool, "returned": [float, or the error as a string, per model]}. The reference
    count runs here, on the host's own copy of each planted model."""
    name = _name("dead_fraction", params)
    if not (isinstance(data, dict) and isinstance(data.get("returned"), list)):
        return f"{name}: {MALFORMED}"
    if data.get("borrows"):
        return BORROWS_MONITOR
    if len(data["returned"]) != len(prepared.given) or not all(map(_returned_ok, data["returned"])):
        return f"{name}: {MALFORMED}"
    for model, what, returned in zip(prepared.given, prepared.private, data["returned"], strict=True):
        with torch.random.fork_rng(devices=[]):
            message = dead_units.verdict(name, returned, planted.build(model["spec"]), torch.as_tensor(model["x"]),
                                         what, bool(params.get("hidden")))
        if message:
            return message
    return None


JUDGES = {
    "design": Judge(prepare_design, decide_design, group="training"),
    "accuracy": Judge(prepare_training, decide_accuracy, group="training"),
    "budget": Judge(prepare_training, decide_budget, group="training"),
    "bonus": Judge(prepare_training, decide_bonus, group="training"),
    "dead_fraction": Judge(prepare_dead_fraction, decide_dead_fraction),
    "dead_fraction_cnn": Judge(prepare_dead_fraction_cnn, decide_dead_fraction),
}
