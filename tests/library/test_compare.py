"""Tests for course_lib.compare: deterministic rows (1 or 2 workers), gradient flow, dead units, tables."""

import math
import statistics

import numpy as np
import pytest
import torch

from course_lib import compare
from course_lib.compare import (
    Budget,
    Job,
    build_model,
    difference,
    gradient_ratio,
    grid,
    markdown_table,
    plot_bars,
    run,
    run_job,
    summarize,
    versus,
)
from course_lib.data import Split
from course_lib.diagnostics import dead_fraction, gradient_stats
from course_lib.nn import mlp

torch.set_num_threads(1)

TINY = Budget(hidden=(12,), epochs=2, batch_size=32, probe=64)
TIMES = ("train_cpu_s", "train_time_s")


def _blobs(n: int = 120, d: int = 40, classes: int = 3, seed: int = 0) -> Split:
    """Gaussian blobs: x (n, d) float32 around one random centre per class, y (n,) int64."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.normal(size=(classes, d))[y] + rng.normal(size=(n, d))).astype(np.float32)
    return Split(x[:80], y[:80], x[:0], y[:0], x[80:], y[80:])


DATA = {"blobs": _blobs(), "other": _blobs(seed=1)}


def _without_times(rows):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


def test_rows_are_identical_with_one_and_two_workers():
    jobs = grid(["blobs", "other"], ["relu", "gelu", "maxout"], [0, 1], TINY)
    jobs += [Job("blobs", "relu", 3, Budget(arch="cnn", channels=4, epochs=1, batch_size=40))]
    one, two = run(jobs, DATA, workers=1), run(jobs, DATA, workers=2)
    assert _without_times(one) == _without_times(two)
    assert [(r["data"], r["activation"], r["seed"]) for r in two] == [(j.data, j.activation, j.seed) for j in jobs]


def test_a_job_is_reproducible_and_its_seed_matters():
    a, b = run_job(Job("blobs", "relu", 0, TINY), DATA["blobs"]), run_job(Job("blobs", "relu", 0, TINY), DATA["blobs"])
    c = run_job(Job("blobs", "relu", 1, TINY), DATA["blobs"])
    assert _without_times([a]) == _without_times([b])
    assert a["train_loss"] != c["train_loss"]


def test_a_row_has_the_final_test_accuracy_and_one_curve_point_per_epoch():
    row = run_job(Job("blobs", "tanh", 0, Budget(hidden=(12,), epochs=3, batch_size=32)), DATA["blobs"])
    assert len(row["test_curve"]) == len(row["train_loss"]) == 3
    assert row["test_acc"] == row["test_curve"][-1]
    assert 0 <= row["test_acc"] <= 1 and 0 <= row["train_acc"] <= 1
    assert row["dead_fraction"] is None  # tanh units cannot be dead
    assert row["train_cpu_s"] >= 0 and row["train_time_s"] > 0


def test_gradient_ratio_matches_gradient_stats_first_over_last_layer():
    torch.manual_seed(0)
    model = mlp([40, 16, 16, 3], "sigmoid")
    x, y = torch.randn(50, 40), torch.randint(0, 3, (50,))
    ratio = gradient_ratio(model, x, y)
    assert all(p.grad is None for p in model.parameters())  # cleared afterwards
    torch.nn.functional.cross_entropy(model(x), y).backward()
    stats = gradient_stats(model)
    assert ratio == pytest.approx(stats[0].grad_norm / stats[-1].grad_norm, rel=1e-6)


def test_gradient_ratio_is_none_for_a_single_layer():
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    assert gradient_ratio(torch.nn.Linear(4, 3), x, y) is None


@pytest.mark.parametrize(("bias", "expected"), [(-10.0, 1.0), (10.0, 0.0)])
def test_dead_fraction_is_one_when_every_unit_is_silent_and_zero_when_all_fire(bias, expected):
    model = mlp([5, 8, 8, 2], "relu", bias=bias)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(1e-3)  # the bias decides the sign of every pre-activation
    assert dead_fraction(model, torch.randn(20, 5)) == expected


def test_dead_fraction_is_none_for_smooth_activations():
    assert dead_fraction(mlp([5, 8, 2], "gelu"), torch.randn(4, 5)) is None


def test_build_model_gives_maxout_k_times_the_hidden_weights():
    relu, maxout = (build_model(Budget(hidden=(10, 10)), a, 40, 10) for a in ("relu", "maxout"))
    hidden = [40 * 10 + 10, 10 * 10 + 10]
    assert sum(p.numel() for p in relu.parameters()) == sum(hidden) + 10 * 10 + 10
    assert sum(p.numel() for p in maxout.parameters()) == 2 * sum(hidden) + 10 * 10 + 10
    assert isinstance(build_model(Budget(arch="linear"), "relu", 40, 10), torch.nn.Linear)
    with pytest.raises(ValueError, match="unknown arch"):
        build_model(Budget(arch="rnn"), "relu", 40, 10)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_build_model_gives_selu_lecun_normal_weights_and_no_batchnorm(arch):
    """SELU as Klambauer et al. (2017) intended: weight variance 1/fan_in (ReLU's Kaiming init has 2/fan_in)."""
    torch.manual_seed(0)
    selu = build_model(Budget(arch=arch), "selu", 40, 10)
    torch.manual_seed(0)
    relu = build_model(Budget(arch=arch), "relu", 40, 10)
    assert any(isinstance(m, torch.nn.SELU) for m in selu)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in selu.modules())
    weights = [(p, r) for p, r in zip(selu.parameters(), relu.parameters(), strict=True) if p.ndim >= 2]
    for w, w_relu in weights[1:-1]:  # the hidden layers, with fan_in = 100 (mlp) or 25 * 3 (cnn) inputs
        fan_in = w[0].numel()
        assert abs(w.std().item() * math.sqrt(fan_in) - 1) < 5 / math.sqrt(2 * w.numel())
        torch.testing.assert_close(w * math.sqrt(2), w_relu)  # same draw, Kaiming's sqrt(2) gain removed


def test_run_refuses_unknown_data_sets_and_zero_workers():
    with pytest.raises(KeyError, match="missing"):
        run([Job("missing", "relu", 0, TINY)], DATA)
    with pytest.raises(ValueError, match="workers"):
        run([], DATA, workers=0)


def _row(activation, seed, acc, dead=None, data="d"):
    return {"data": data, "arch": "mlp", "activation": activation, "seed": seed, "test_acc": acc,
            "train_cpu_s": 1.0 + seed, "dead_fraction": dead, "grad_ratio": 0.5, "n_params": 7}


def test_summarize_matches_numpy_statistics_per_activation():
    accs = {"relu": [0.6, 0.7, 0.65], "gelu": [0.5, 0.52, 0.9]}
    rows = [_row(a, s, v, dead=0.1 * s if a == "relu" else None) for a, vs in accs.items() for s, v in enumerate(vs)]
    summary = {s["activation"]: s for s in summarize(rows)}
    assert list(summary) == ["relu", "gelu"]
    for a, vs in accs.items():
        assert summary[a]["mean"] == pytest.approx(np.mean(vs))
        assert summary[a]["std"] == pytest.approx(np.std(vs, ddof=1))
        assert (summary[a]["min"], summary[a]["max"], summary[a]["n"]) == (min(vs), max(vs), 3)
        assert summary[a]["cpu_s"] == 2.0
    assert summary["relu"]["dead_fraction"] == pytest.approx(0.1)
    assert summary["gelu"]["dead_fraction"] is None


def test_versus_calls_a_gap_within_two_standard_errors_noise():
    rows = [_row("relu", s, v) for s, v in enumerate([0.60, 0.62, 0.64])]
    rows += [_row("close", s, v) for s, v in enumerate([0.61, 0.63, 0.65])]
    rows += [_row("far", s, v) for s, v in enumerate([0.80, 0.81, 0.82])]
    verdicts = {s["activation"]: s for s in versus(summarize(rows))}
    diff, se = difference(verdicts["close"], verdicts["relu"])
    assert diff == pytest.approx(0.01)
    assert se == pytest.approx(math.sqrt(2 * statistics.variance([0.6, 0.62, 0.64]) / 3))
    assert verdicts["close"]["verdict"] == "within noise"
    assert verdicts["far"]["verdict"] == "better"
    assert verdicts["relu"]["verdict"] == "reference"


def test_versus_leaves_groups_without_a_reference_undecided():
    rows = [_row("relu", s, 0.5 + s / 100) for s in range(3)] + [_row("gelu", s, 0.6, data="e") for s in range(3)]
    gelu = versus(summarize(rows))[-1]
    assert (gelu["diff"], gelu["se"], gelu["verdict"]) == (None, None, None)


def test_markdown_table_formats_values_and_prints_none_as_na():
    rows = [{"a": "relu", "m": 0.12345, "d": None}, {"a": "gelu", "m": float("nan"), "d": 0.5}]
    columns = {"act": ("a", ""), "mean": ("m", ".2f"), "dead": ("d", ".0%"), "len": (lambda r: len(r["a"]), "")}
    table = markdown_table(rows, columns)
    assert table.splitlines() == ["| act | mean | dead | len |", "|---|---|---|---|",
                                  "| relu | 0.12 | n/a | 4 |", "| gelu | n/a | 50% | 4 |"]


def test_plot_bars_draws_one_bar_per_data_set_and_activation_at_the_mean():
    import matplotlib

    matplotlib.use("Agg")
    rows = [_row(a, s, 0.5 + 0.1 * i + 0.01 * s, data=d) for d in ("d", "e") for i, a in enumerate(["relu", "gelu"])
            for s in range(3)]
    summary = summarize(rows)
    ax = plot_bars(summary)
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(sorted(s["mean"] for s in summary))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "gelu"]


def test_paired_matches_seeds_and_compares_each_activation_with_relu_on_its_own_data_and_arch():
    def row(data, activation, seed, acc):
        return {"data": data, "arch": "mlp", "activation": activation, "seed": seed, "test_acc": acc}

    rows = [row("a", "relu", s, 0.5 + 0.1 * s) for s in range(4)]
    rows += [row("a", "gelu", s, 0.52 + 0.1 * s) for s in (3, 2, 1, 0)]  # any order; a constant gain of 0.02
    rows += [row("a", "silu", s, 0.5 + 0.1 * s) for s in range(3)]  # a seed missing: compared on 3
    rows += [row("b", "gelu", 0, 0.9)]  # no relu on b: no comparison
    diffs = compare.paired(rows)
    assert set(diffs) == {("a", "mlp", "gelu"), ("a", "mlp", "silu")}
    assert diffs["a", "mlp", "gelu"]["mean"] == pytest.approx(0.02) and diffs["a", "mlp", "gelu"]["n"] == 4
    assert diffs["a", "mlp", "gelu"]["low"] == pytest.approx(0.02)  # no spread once paired
    assert diffs["a", "mlp", "silu"]["n"] == 3 and diffs["a", "mlp", "silu"]["mean"] == pytest.approx(0.0)


def test_the_test_accuracy_is_measured_on_the_test_split_not_the_training_set():
    """Test inputs = training inputs with every label moved to the next class: a net that learned the training
    set is right on them and wrong on every test example. Measured on the training set, both would be high."""
    d = _blobs(n=200, seed=3)
    moved = Split(d.x_train, d.y_train, d.x_val, d.y_val, d.x_train, (d.y_train + 1) % 3)
    row = run_job(Job("blobs", "relu", 0, Budget(hidden=(32,), epochs=30, batch_size=32)), moved)
    assert row["train_acc"] >= 0.95 and row["test_acc"] <= 0.05
