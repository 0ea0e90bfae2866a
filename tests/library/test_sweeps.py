"""Tests for course_lib.sweeps: the shared dead-unit experiment of notebooks 03 and 04."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import sweeps
from course_lib.sweeps import Setup

torch.set_num_threads(1)

# A smaller, faster version of the notebooks' set-up: same data, narrower net, fewer epochs.
SMALL = Setup(hidden=(8, 8), epochs=3)
ONE_LAYER = Setup(hidden=(16,), epochs=3)


def test_the_data_set_is_the_three_spirals_in_2d():
    data = sweeps.load_data()
    assert data.x_train.shape == (180, 2) and data.n_classes == 3
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert sweeps.load_data() is data  # cached: every run sees the very same tensors


def test_a_bias_of_minus_10_kills_every_unit_and_training_cannot_revive_them():
    # Inputs lie in the unit disc and Kaiming weights are far below 10, so every pre-activation is < 0:
    # layer 1 is silent, deeper layers see zeros and are left with their bias -10. No gradient reaches them.
    row = sweeps.measure(lr=0.5, bias=-10.0, seed=0, setup=SMALL)
    assert row["dead_init"] == 1.0
    assert row["dead"] == 1.0
    assert row["val_acc"] == pytest.approx(1 / 3)  # constant logits: the majority-free 3-class guess


def test_a_bias_of_plus_10_kills_no_unit_of_a_one_hidden_layer_net():
    # w.x + 10 > 0 on the unit disc unless |w| > 10, which Kaiming N(0, 2/2) weights essentially never reach.
    assert sweeps.dead_fraction_after_training(lr=0.01, bias=10.0, seed=0, setup=ONE_LAYER) == 0.0


def test_the_same_seed_gives_the_same_row_and_another_seed_another_net():
    first = sweeps.measure(lr=0.3, seed=3, setup=SMALL)
    again = sweeps.measure(lr=0.3, seed=3, setup=SMALL)
    assert first == again
    a, b = sweeps.build_model(seed=1, setup=SMALL), sweeps.build_model(seed=2, setup=SMALL)
    assert not torch.equal(a[0].weight, b[0].weight)


def test_prelu_gets_one_slope_per_unit_and_its_row_reports_their_range():
    model = sweeps.build_model("prelu", setup=SMALL)
    assert {name: s.shape for name, s in sweeps.prelu_slopes(model).items()} == {"1": (8,), "3": (8,)}
    run = sweeps.train_run(activation="prelu", lr=0.1, seed=0, setup=SMALL)
    slopes = torch.cat([run.model[1].weight, run.model[3].weight]).detach()
    assert not torch.all(slopes == 0.25)  # they were trained
    assert (run.row["slope_min"], run.row["slope_max"]) == (slopes.min().item(), slopes.max().item())


def test_batchnorm_sits_between_each_hidden_linear_and_its_activation():
    model = sweeps.build_model(batchnorm=True, setup=SMALL)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


def test_batchnorm_cancels_a_constant_bias_so_no_unit_is_born_dead_in_training_mode():
    # In training mode BatchNorm subtracts the batch mean, so the bias -10 disappears; each unit is then
    # positive on some example unless all its inputs are equal.
    model = sweeps.build_model(bias=-10.0, batchnorm=True, setup=SMALL).train()
    from course_lib.diagnostics import DeadUnitMonitor

    monitor = DeadUnitMonitor(model).observe(sweeps.load_data().x_train)
    assert monitor.dead_fraction() == 0.0


def test_a_diverged_run_is_flagged_and_reports_nan_instead_of_all_dead():
    def blow_up(epoch, model, history):  # what a too-large step does to the weights, made certain
        model[0].weight.data.fill_(math.inf)

    run = sweeps.train_run(lr=0.1, seed=0, setup=Setup(hidden=(8, 8), epochs=10), on_epoch_end=blow_up)
    row = run.row
    assert row["diverged"] is True
    assert len(run.history) < 10  # training stopped once the loss was no longer finite
    assert math.isnan(row["dead"]) and math.isnan(row["val_acc"])


def test_a_dead_units_incoming_weights_get_exactly_zero_gradient_over_the_whole_data_set():
    data = sweeps.load_data()
    model = sweeps.build_model(seed=0, setup=SMALL)
    with torch.no_grad():
        model[0].bias[[2, 5]] = -100.0  # units 2 and 5 of layer 1: dead by hand
    grads = sweeps.incoming_gradients(model, data.x_train, data.y_train)
    dead = sweeps.dead_masks(model, data.x_train)
    assert dead["1"][[2, 5]].all()
    assert torch.equal(grads["1"][[2, 5]], torch.zeros(2))
    # the reference: autograd on the same loss, read directly from the Linear's gradients
    assert torch.equal(grads["1"], torch.cat([model[0].weight.grad.abs(), model[0].bias.grad.abs()[:, None]], 1)
                       .max(1).values)
    assert (grads["1"][~dead["1"]] > 0).all()


def test_tracking_records_a_mask_at_initialisation_and_after_every_epoch():
    run = sweeps.train_run(lr=0.1, seed=0, setup=SMALL, track=True)
    assert len(run.masks) == SMALL.epochs + 1
    assert run.history.extra["dead"] == [sweeps.fraction_dead(m) for m in run.masks[1:]]
    assert run.row["dead_init"] == sweeps.fraction_dead(run.masks[0])


def test_revived_units_counts_units_dead_at_one_checkpoint_and_alive_at_a_later_one():
    t, f = True, False
    masks = [{"a": torch.tensor([t, t, f, t, f])},
             {"a": torch.tensor([f, t, t, t, f])},
             {"a": torch.tensor([t, t, f, f, f])}]
    # unit 0: dead, alive, dead -> revived; unit 1: always dead; unit 2: dies at 1, alive at 2 -> revived;
    # unit 3: dead, dead, alive -> revived; unit 4: never dead.
    assert sweeps.revived_units(masks) == {"a": (4, 3)}


def test_sweep_makes_one_row_per_point_and_seed_and_keeps_labels():
    def fake(lr, seed):
        return {"lr": lr, "seed": seed, "dead": lr * seed}

    rows = sweeps.sweep([{"lr": 0.1, "label": "small"}, {"lr": 1.0}], seeds=range(3), run=fake)
    assert [(r.get("label"), r["lr"], r["seed"]) for r in rows] == [
        ("small", 0.1, 0), ("small", 0.1, 1), ("small", 0.1, 2), (None, 1.0, 0), (None, 1.0, 1), (None, 1.0, 2)]


def test_summarize_describes_each_group_and_counts_nans_apart():
    rows = [{"g": "a", "m": 1.0}, {"g": "a", "m": 3.0}, {"g": "b", "m": math.nan}, {"g": "a", "m": math.nan},
            {"g": "b", "m": 5.0}]
    s = sweeps.summarize(rows, "g", "m")
    assert s["by"].tolist() == ["a", "b"]
    assert s["mean"].tolist() == [2.0, 5.0]
    assert s["std"][0] == pytest.approx(np.std([1.0, 3.0], ddof=1)) and s["std"][1] == 0.0
    assert s["min"].tolist() == [1.0, 5.0] and s["max"].tolist() == [3.0, 5.0]
    assert s["n"].tolist() == [2, 1] and s["n_nan"].tolist() == [1, 1]
    assert "2.000 ± 1.414" in sweeps.format_summary(rows, "g", ["m"])


def test_format_summary_counts_runs_and_diverged_runs_per_group():
    rows = [{"g": "a", "m": 1.0, "diverged": False}, {"g": "a", "m": math.nan, "diverged": True},
            {"g": "b", "m": 2.0, "diverged": False}]
    lines = sweeps.format_summary(rows, "g", ["m"]).splitlines()
    assert lines[1].endswith("| 2 (1)") and lines[2].endswith("| 1 (0)")


def test_plot_sweep_draws_the_mean_of_each_group_and_marks_diverged_runs():
    import matplotlib

    matplotlib.use("Agg")
    rows = [{"lr": 0.1, "dead": 0.0}, {"lr": 0.1, "dead": 0.2}, {"lr": 1.0, "dead": 0.5}, {"lr": 1.0, "dead": math.nan}]
    ax = sweeps.plot_sweep(rows, "lr", "dead")
    mean_line = ax.lines[0]
    assert mean_line.get_xdata().tolist() == [0.1, 1.0]
    assert np.allclose(mean_line.get_ydata(), [0.1, 0.5])
    assert [t.get_text() for t in ax.texts] == ["1/2 diverged"]


def test_a_sweep_in_two_worker_processes_gives_the_same_rows_as_one_process():
    grid = [{"lr": 0.3, "setup": SMALL}, {"lr": 1.0, "bias": 0.1, "setup": SMALL, "label": "big"}]
    assert sweeps.sweep(grid, [0, 1], workers=2) == sweeps.sweep(grid, [0, 1])
