"""How often ex03's reference solution passes each check under secret seeds (as `course grade` draws them),
with the figures the thresholds are set against, and how often each mutant (solutions/.../mutants.toml)
keeps all its points: python tools/ex03_pass_rates.py [n_students] [--mutants]

Every check is run through the host's end of the channel (tests.grading_fixtures.Host: secret seeds, protocol
encoding both ways, judged host-side), for n students (default 60) and every test cell's notebook seed.
For provoke/prevent it also prints the dead fractions and accuracies the host measured, and the host CPU
seconds each judge took.
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.grading import judges  # noqa: E402
from course_lib.grading.authoring.mutation import load_mutants, mutate  # noqa: E402
from course_lib.grading.authoring.sources import is_answer, read_source  # noqa: E402
from course_lib.grading.checks import ex03  # noqa: E402
from course_lib.grading.judges import ex03 as judge  # noqa: E402
from tests.grading_fixtures import Host, graded  # noqa: E402

A = "ex03_dead_neurons"
CHECKS = [  # (test cell, check function, answer, params): the notebook's calls
    ("test_firing_rates", ex03.check_firing_rates, "firing_rates", dict(seed=1)),
    ("test_firing_rates_hidden", ex03.check_firing_rates, "firing_rates", dict(seed=7501, hidden=True)),
    ("test_dead_fraction", ex03.check_dead_fraction, "dead_fraction", dict(seed=2)),
    ("test_dead_fraction_hidden", ex03.check_dead_fraction, "dead_fraction", dict(seed=7502, hidden=True)),
    ("test_provoke", ex03.check_provoke, "provoke_death", dict(seed=6, threshold=0.30)),
    ("test_provoke_hidden", ex03.check_provoke, "provoke_death", dict(seed=7407, threshold=0.30, hidden=True)),
    ("test_prevent", ex03.check_prevent, "prevent_death", dict(seed=6, max_dead=0.01, threshold=0.92)),
    ("test_prevent_hidden", ex03.check_prevent, "prevent_death",
     dict(seed=7407, max_dead=0.01, threshold=0.92, hidden=True)),
]


def solution_namespace(source=None) -> dict:
    """The answer cells of `source` (default: the solution), run as the notebook runs them."""
    namespace: dict = {}
    exec("import torch\nfrom torch import nn\nfrom course_lib.nn import mlp", namespace)
    for c in (source or read_source(A)).cells:
        if is_answer(c) and c.cell_type == "code":
            exec(c.source, namespace)
    return namespace


def figures(check: str, params: dict, student: str) -> tuple[judge.Measured, float]:
    """The host's measurement of the solution's setting for one student's secret seed, and its CPU seconds."""
    served = judges.serve(check, judges.secret_params(check, params, b"pass rates", A, student))
    answer = SOLUTION["provoke_death" if check.endswith("provoke") else "prevent_death"]
    setting = judges.roundtrip(ex03.probe_setting(answer, served.given["seed"]))
    start = time.process_time()
    measured = judge.measure(setting, served.given, served.prepared.private)
    return measured, time.process_time() - start


def main(n: int) -> None:
    torch.set_num_threads(1)
    for cell, check_fn, answer, params in CHECKS:
        failures, start = [], time.process_time()
        for i in range(n):
            host = Host(A, f"student{i}", b"pass rates")
            message = graded(check_fn, SOLUTION[answer], host=host, **params)
            if message:
                failures.append(message)
        cpu = (time.process_time() - start) / n
        print(f"{cell}: {n - len(failures)}/{n} pass, {cpu:.2f} CPU s per check (kernel + host)")
        for message in failures[:3]:
            print("   ", message)
        if check_fn in (ex03.check_provoke, ex03.check_prevent):
            name = "ex03.provoke" if check_fn is ex03.check_provoke else "ex03.prevent"
            rows = [figures(name, params, f"student{i}") for i in range(n)]
            init = np.array([judge.pooled(m.at_init) for m, _ in rows])
            dead = np.array([judge.pooled(m.trained) for m, _ in rows])
            acc = np.array([np.mean(m.outcome.predictions == judge.moons_data(s).y_test)
                            for (m, _), s in zip(rows, _data_seeds(name, params, n), strict=True)])
            host = np.array([c for _, c in rows])
            print(f"    dead at init {init.min():.3f}-{init.max():.3f}, after training {dead.min():.3f}-"
                  f"{dead.max():.3f}, test accuracy {acc.min():.3f}-{acc.max():.3f}; host CPU per check "
                  f"median {np.median(host):.2f} s, max {host.max():.2f} s")


def _data_seeds(check: str, params: dict, n: int) -> list[int]:
    return [judges.secret_params(check, params, b"pass rates", A, f"student{i}")["seed"] for i in range(n)]


def mutants(n: int) -> None:
    """For each mutant: on how many of n students it keeps every point of the test cells it touches."""
    source = read_source(A)
    for mutant in load_mutants(A):
        answers = solution_namespace(mutate(source, mutant, A))
        cells = [c for c in CHECKS if c[2] == ANSWER_OF[mutant.cell]]
        kept = sum(all(graded(fn, answers[answer], host=Host(A, f"student{i}", b"pass rates"), **params) is None
                       for _, fn, answer, params in cells) for i in range(n))
        print(f"mutant '{mutant.name}': keeps all points for {kept}/{n} students")


ANSWER_OF = {"firing_rates": "firing_rates", "dead_fraction": "dead_fraction", "provoke": "provoke_death",
             "prevent": "prevent_death"}
SOLUTION = solution_namespace()

if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 60
    if "--mutants" in sys.argv:
        mutants(count)
    else:
        main(count)
