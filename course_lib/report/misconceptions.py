"""The named misconceptions of each assignment, where the course teaches each one, and which students' answers
reproduced it.

A judge names a misconception by putting its text in the message it returns (judges/verdict.py's
`Misconception.message`, ex03's RATE_MISCONCEPTIONS, dead_units.MISTAKES, ...). The registry below is built
from those very constants (imported, never copied; only the shared judges' generic texts below are quoted),
so a judge and the report cannot drift apart: a failed test cell reproduced a misconception when the message
`course grade` saved for it contains that text. When one named text contains another (a longer, more specific
one), only the longer counts. A message that starts with numbers (an error, a count, a shape) names its
misconception by its fixed end, a constant the registry lists under a short label; so does a training hint.

Each entry also names the notebook section that addresses the mistake and the pause or myth of
docs/lecturers.md to use in the next lecture.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from course_lib.grading.judges import dead_units, ex01, ex02, ex03, ex04, ex05, ex06
from course_lib.report.results import ClassResults

# Texts the shared judges write into any failure, inside longer sentences: verdict.py's for element-wise
# functions (ex01, ex05), layers.py's for numpy layers (ex02) and modules.py's for torch modules (ex04, ex05).
OVERFLOW = "use a form that cannot overflow for large |x|"
DTYPE, LAYER_DTYPE = "keep the input's dtype", "keep the inputs' dtype"
OVERFLOWS, UPCASTS = "a formula that overflows for large |x| (numpy warned)", "returned another dtype than the input's"
DETACHED = "compute the output from x with torch operations (no numpy, no .detach(), no .data)"
DETACHES = "the output was cut from the graph (numpy, .detach() or .data)"

@dataclass(frozen=True)
class Section:
    """Where the course addresses a misconception: a notebook, its heading, and the lecture's pause or myth."""

    notebook: str
    heading: str
    lecture: str


@dataclass(frozen=True)
class Named:
    """A misconception: the text its judge's message contains, and where it is taught."""

    text: str
    section: Section
    label: str = ""

    @property
    def name(self) -> str:
        """Its short name: `label`, else the text up to the first ": " (judges write "what you did: why")."""
        head = self.label or self.text.split(": ")[0].strip()
        return head if len(head) <= 90 else head[:87] + "..."


@dataclass(frozen=True)
class Found:
    """A misconception reproduced in one test cell, and by whom."""

    misconception: Named
    cell: str
    student_ids: tuple[str, ...]

    def row(self) -> dict:
        return {"misconception": self.misconception.name, "cell": self.cell, "students": len(self.student_ids),
                "student_ids": "; ".join(self.student_ids)}


COLUMNS = ["misconception", "cell", "students", "student_ids"]

KINK = Section("02_relu_and_its_derivative.ipynb", "What PyTorch returns at 0 — it depends how you write ReLU",
               "02, pause 2: let the room guess each formulation's value at 0 (0, 0.5 or 1) before the cell prints it")
RELU = Section("02_relu_and_its_derivative.ipynb", "The definition",
               "02, slide 'the definition'; 05, pause 1: ReLU and |x| as 2-piece maxout units (ask for the weights)")
LEAKY = Section("04_leaky_relu_and_prelu.ipynb", "Definitions and derivatives",
                "04, pause 1: 'what is a network of Leaky ReLUs with α = 1?'")
SATURATION = Section("01_activation_functions.ipynb", "Sigmoid and tanh: saturation",
                     "01, pause 2 and myth: 'since σ' ≤ 0.25, a sigmoid net's gradient must shrink 4× per layer'")
STABLE = Section("01_activation_functions.ipynb", "Sigmoid and tanh: saturation",
                 "01, slide 'sigmoid and tanh saturation': exp(-x) overflows for large negative x")
DTYPES = Section("02_relu_and_its_derivative.ipynb", "The definition", "02, slide 'the definition'")
CHAIN = Section("02_relu_and_its_derivative.ipynb", "The chain rule at a kink is not always a subgradient",
                "02, slides 'the chain rule at a kink' and 'a gradient check that fails at the kink'")
NETWORK = Section("02_relu_and_its_derivative.ipynb", "…and in a whole network",
                  "02, slide 'a gradient check that fails at the kink' (in a whole network)")
DEAD = Section("03_dead_neurons.ipynb", 'What "dead" means',
               "03, pause 1: 'can a unit be dead on the training set and alive on the test set?'")
PRELU = Section("04_leaky_relu_and_prelu.ipynb", "PReLU's slope gradient, checked against torch",
                "04, slide 'PReLU's slope gradient checked against torch'")
MAXOUT = Section("05_maxout.ipynb", "A maxout layer in numpy, checked against torch",
                 "05, slide 'a maxout layer in numpy checked against torch'")
LINEAR = Section("01_activation_functions.ipynb", "Stacked linear layers collapse to one",
                 "01, pause 1: 'will the 3-layer linear net beat the 1-layer one?'")
PREVENT = Section("03_dead_neurons.ipynb", "What prevents death? Measured at a too-large learning rate",
                  "03, slide 'what prevents death'")
CAPSTONE = Section("06_capstone_comparison.ipynb", "Run everything once",
                   "no pause addresses it yet: say it when the capstone's models are introduced")
GRADCHECK = Section("05_maxout.ipynb", "... and by a numerical gradient check",
                    "05, slide 'a maxout layer ... checked by a gradient check'")
GRADCHECK_02 = Section("02_relu_and_its_derivative.ipynb", "A gradient check that fails at the kink, and why",
                       "02, slide 'a gradient check that fails at the kink'")
BORN_DEAD = Section("03_dead_neurons.ipynb", "Dead at birth: when the whole network is constant",
                    "03, pause 2: 'which protects more, width or depth?'")
LEARNING_RATE = Section("03_dead_neurons.ipynb", "Death during training: the learning rate",
                        "03, pause 3: how far above a good learning rate does '40% dead' happen?")
EXPERIMENT = Section("03_dead_neurons.ipynb", "The experiment used throughout notebooks 03 and 04",
                     "03, slide 'the shared experiment'")
SLOPES = Section("04_leaky_relu_and_prelu.ipynb", "PReLU: what do the learned slopes do?",
                 "04, pause 2: 'do the slopes stay between 0 and 1?'")
MAXOUT_MLP = Section("05_maxout.ipynb", "What maxout buys: MNIST-1D, 5 seeds",
                     "05, slide 'what maxout buys (MNIST-1D, 5 seeds)'")
BUDGET = Section("06_capstone_comparison.ipynb", "The budget: what every activation gets",
                 "06, slide 'the budget every activation gets'")
REFERENCE_POINTS = Section("06_capstone_comparison.ipynb", "Reference points from the paper",
                           "06, pause 1: 'logistic regression, MLP, CNN: in which order, and how far apart?'")


def _text(item) -> str:
    """The text of a misconception-like item: an object with `.message` (a judge's Misconception or Hint), a
    (recogniser, text) pair, or a text."""
    return item if isinstance(item, str) else item[-1] if isinstance(item, tuple) else item.message


def messages(items: Iterable) -> list[str]:
    """The text of each misconception-like item, each once."""
    return list(dict.fromkeys(_text(i) for i in items))


def _named(section: Section, *groups: Iterable) -> list[Named]:
    """Misconceptions whose text names itself (judges write "what you did: why")."""
    return [Named(text, section) for text in messages(item for group in groups for item in group)]


def _labelled(section: Section, items: dict[str, object]) -> list[Named]:
    """Misconceptions {label: item} whose text does not name itself: a training hint (a heuristic behind a low
    accuracy) or the fixed end of a message whose start holds the numbers."""
    return [Named(_text(item), section, label) for label, item in items.items()]


NO_NONLINEARITY = "accuracy no better than a linear model (no nonlinearity between the layers?)"
NEAR_CHANCE = "accuracy near chance (did the network train?)"

REGISTRY: dict[str, list[Named]] = {
    "ex01_activations": [
        *_named(KINK, [ex01.KINK_IS_ONE, ex01.KINK_IS_HALF]), *_named(RELU, [ex01.RELU_IS_ABS]),
        *_named(LEAKY, [ex01.LEAKY_DEFAULT_SLOPE, ex01.LEAKY_KINK_IS_ONE]),
        *_named(SATURATION, [ex01.SIGMOID_GRAD_PLUS, ex01.TANH_GRAD_UNSQUARED]),
        *_labelled(STABLE, {OVERFLOWS: OVERFLOW}), *_labelled(DTYPES, {UPCASTS: DTYPE})],
    "ex02_backprop": [
        *_named(CHAIN, [ex02.DB_WRONG_AXIS, ex02.DB_SUMMED_ALL, ex02.DX_NOT_RESHAPED, ex02.DW_TRANSPOSED,
                        ex02.RELU_KINK, ex02.RELU_TIMES_OUTPUT, ex02.RELU_PASSES_ALL]),
        *_labelled(DTYPES, {UPCASTS: LAYER_DTYPE}),
        *_named(NETWORK, [ex02.OVERFLOW], ex02.NET_MISCONCEPTIONS),
        *_labelled(GRADCHECK_02, {
            "the gradient check passed a wrong gradient (compared it with itself?)": ex02.CHECK_PASSES_WRONG,
            "the gradient check failed right gradients (f ignores the perturbed parameter?)": ex02.CHECK_FAILS_RIGHT,
            "the gradient check blamed parameters whose gradients are right": ex02.CHECK_BLAMES_RIGHT,
            "the gradient check skipped parameters": ex02.CHECK_EVERY}),
        *_labelled(LINEAR, {NO_NONLINEARITY: ex02.LINEAR_HINT}),
        *_labelled(NETWORK, {"accuracy near chance (gradients of the wrong sign or scale?)": ex02.CHANCE_HINT})],
    "ex03_dead_neurons": [
        *_named(DEAD, ex03.RATE_MISCONCEPTIONS, ex03.DEAD_MISCONCEPTIONS, [ex03.WATCHED_LINEAR_OUTPUTS]),
        *_labelled(DEAD, {"the monitor watched the Linear layers, not the ReLUs": ex03.WATCHED_LINEAR,
                          "ReLUs inside nested blocks were missed (direct children only?)": ex03.NESTED_RELUS,
                          "hooks left attached after measuring": ex03.HOOKS_LEFT}),
        *_labelled(EXPERIMENT, {"too few units for a dead fraction to mean something": ex03.TOO_FEW_UNITS}),
        *_labelled(BORN_DEAD, {"units killed at initialisation, not by training": ex03.BORN_DEAD}),
        *_labelled(LEARNING_RATE, {"too few units died (the learning rate not large enough?)": ex03.TOO_FEW_DIED}),
        *_labelled(PREVENT, {NEAR_CHANCE: ex03.PREVENT_HINTS[0],
                             "units dead at initialisation were still dead after training": ex03.STILL_BORN_DEAD})],
    "ex04_leaky_prelu": [
        *_named(PRELU, ex04.MISCONCEPTIONS),
        *_labelled(PRELU, {DETACHES: DETACHED}), *_named(SLOPES, [ex04.SLOPES_NEVER_MOVED, ex04.SHARED_INSTANCE]),
        *_labelled(SLOPES, {"one slope shared across channels": ex04.SHARED_SLOPE,
                            "the slopes are not an nn.Parameter": ex04.NOT_A_PARAMETER,
                            "the slopes ignored init": ex04.INIT_IGNORED,
                            "build_mlp ignored the activation passed in": ex04.ACTIVATION_IGNORED,
                            "build_mlp used another activation than the one passed in": ex04.OTHER_ACTIVATION}),
        *_labelled(LINEAR, {NO_NONLINEARITY: ex04.HINTS[0]})],
    "ex05_maxout": [
        *_named(MAXOUT, ex05._forward_misconceptions(2), ex05._backward_wrongs(), ex05.LAYER_MISCONCEPTIONS),
        *_labelled(MAXOUT, {DETACHES: DETACHED,
                            "a width not divisible by k was not refused (ValueError)": ex05.INDIVISIBLE,
                            "Maxout's Linear has one output per unit, not k pieces each": ex05.LINEAR_TOO_NARROW}),
        *_labelled(MAXOUT_MLP, {"the MLP holds no Maxout layer": ex05.NO_MAXOUT,
                                "another nonlinearity than Maxout in the MLP": ex05.OTHER_NONLINEARITY}),
        *_labelled(GRADCHECK, {f"the gradient check passed a wrong backward that {text}": text
                               for text in ex05.WRONG_BACKWARDS.values()}),
        *_labelled(GRADCHECK, {"the gradient check failed the correct backward": ex05.CHECK_FAILS_CORRECT}),
        *_labelled(DTYPES, {UPCASTS: DTYPE}), *_labelled(LINEAR, {NO_NONLINEARITY: ex05.HINTS[0]})],
    "ex06_capstone": [
        *_named(DEAD, dead_units.MISTAKES.values()), *_named(CAPSTONE, [ex06.SOFTMAX_OUTPUT]),
        *_labelled(CAPSTONE, {"the read-out layer's input size does not fit (conv output length?)":
                              ex06.READOUT_SIZE}),
        *_labelled(LINEAR, {"accuracy near guessing (no nonlinearity, a softmax output, or too large a learning "
                            "rate?)": ex06.HINTS[0], NO_NONLINEARITY: ex06.HINTS[1]}),
        *_labelled(REFERENCE_POINTS, {"an MLP where the bonus tier needs a CNN": ex06.BONUS_HINTS[2]}),
        *_labelled(BUDGET, {"over the CPU budget (too many epochs, tiny batches or too large a model?)":
                            ex06.OVER_BUDGET})],
}


def reproduced(message: str, named: list[Named]) -> list[Named]:
    """The misconceptions whose text `message` contains, less any whose text is part of another found one."""
    found = [n for n in named if n.text in message]
    return [n for n in found if not any(n.text != m.text and n.text in m.text for m in found)]


def find(results: ClassResults) -> list[Found]:
    """Every (misconception, test cell) pair some student's saved message reproduced, most students first."""
    named = REGISTRY.get(results.assignment, [])
    seen: dict[tuple[str, str], tuple[Named, list[str]]] = {}
    for student in results.students:
        for cell, message in sorted(student.messages.items()):
            for n in reproduced(message, named):
                seen.setdefault((n.text, cell), (n, []))[1].append(student.student_id)
    found = [Found(n, cell, tuple(ids)) for (_, cell), (n, ids) in seen.items()]
    return sorted(found, key=lambda f: (-len(f.student_ids), f.misconception.name, f.cell))
