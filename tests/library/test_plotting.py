"""The plotting helpers draw what they promise, on the Agg backend, and never show a window."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib import plotting
from course_lib.train import History

plt.switch_backend("Agg")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def history(val_acc: list[float]) -> History:
    n = len(val_acc)
    return History(train_loss=[1.0] * n, train_acc=[0.5] * n, val_loss=[1.0] * n, val_acc=val_acc,
                   epoch_time_s=[0.1] * n)


def relu(x):
    return np.maximum(x, 0)


def relu_grad(x):
    return (x > 0).astype(float)


# ---------------------------------------------------------------- style


def test_use_style_sets_the_colour_blind_safe_palette():
    with plt.rc_context():
        plotting.use_style()
        cycle = [c["color"] for c in plt.rcParams["axes.prop_cycle"]]
        assert cycle == list(plotting.PALETTE) and plt.rcParams["axes.grid"]


def test_helpers_never_call_show(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() called"))
    plotting.plot_functions({"relu": relu})
    plotting.plot_history(history([0.1, 0.2]))
    plotting.plot_firing_rates({"l1": np.array([0.0, 0.5])})
    plotting.plot_decision_regions(lambda p: p[:, 0] > 0, np.array([[0.0, 0], [1, 1]]), np.array([0, 1]))


# ---------------------------------------------------------------- functions


def test_plot_functions_draws_each_function_and_its_dashed_derivative_side_by_side():
    axes = plotting.plot_functions({"ReLU": (relu, relu_grad), "tanh": np.tanh})
    ax_f, ax_df = axes
    assert [line.get_label() for line in ax_f.lines] == ["ReLU", "tanh"] == legend_labels(ax_f)
    assert len(ax_df.lines) == 2 and all(line.get_linestyle() == "--" for line in ax_df.lines)
    x, dy = ax_df.lines[0].get_data()
    np.testing.assert_array_equal(dy, relu_grad(x))  # the given derivative, not a numerical one
    x, dy = ax_df.lines[1].get_data()
    np.testing.assert_allclose(dy[1:-1], 1 - np.tanh(x[1:-1]) ** 2, atol=1e-3)  # numerical, when none given


def test_plot_functions_accepts_torch_functions_and_modules():
    axes = plotting.plot_functions({"gelu": torch.nn.functional.gelu, "prelu": torch.nn.PReLU(init=0.1)},
                                   x=np.linspace(-1, 1, 5))
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), [-0.1, -0.05, 0, 0.5, 1], atol=1e-6)


def test_plot_functions_without_derivatives_draws_one_panel_into_a_given_axes():
    _, ax = plt.subplots()
    assert plotting.plot_functions({"relu": relu}, derivatives=False, ax=ax) is ax
    assert len(ax.lines) == 1


# ---------------------------------------------------------------- training curves


def test_plot_history_draws_one_line_per_run_and_labels_the_metric():
    ax = plotting.plot_history({"relu": history([0.1, 0.5, 0.7]), "leaky": history([0.2, 0.6, 0.8])})
    assert legend_labels(ax) == ["relu", "leaky"] and ax.get_ylabel() == "validation accuracy"
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.2, 0.6, 0.8])
    assert not ax.collections  # no band for single runs


def test_plot_history_shows_the_mean_and_a_band_for_several_seeds():
    seeds = [history([0.1, 0.5]), history([0.3, 0.7]), history([0.2, 0.6, 0.9])]  # cut to 2 epochs
    ax = plotting.plot_history({"relu": seeds}, band="minmax")
    assert legend_labels(ax) == ["relu (3 seeds)"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.2, 0.6])
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.1) and ys.max() == pytest.approx(0.7)


def test_plot_history_plots_a_single_history_and_extra_metrics():
    h = history([0.1, 0.2])
    h.record("dead_fraction", 0.25)
    h.record("dead_fraction", 0.5)
    ax = plotting.plot_history(h, metric="dead_fraction")
    assert ax.get_legend() is None and ax.get_ylabel() == "dead_fraction"
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.25, 0.5])


def test_plot_with_band_draws_mean_and_std_band():
    ys = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])
    ax = plotting.plot_with_band(np.arange(3), ys, label="x")
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [1, 2, 3])
    ys_band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert ys_band.min() == pytest.approx(0.0) and ys_band.max() == pytest.approx(4.0)  # mean +- 1 std


@pytest.mark.parametrize("ys", [np.zeros(3), np.zeros((2, 4)), np.zeros((0, 3)), np.zeros((2, 3, 1))])
def test_plot_with_band_rejects_ys_not_shaped_seeds_by_points(ys):
    with pytest.raises(ValueError, match=r"n_seeds, len\(x\)"):
        plotting.plot_with_band(np.arange(3), ys)


def test_plot_with_band_rejects_an_unknown_band():
    with pytest.raises(ValueError, match="quartile"):
        plotting.plot_with_band(np.arange(3), np.zeros((2, 3)), band="quartile")


# ---------------------------------------------------------------- firing rates


def test_plot_firing_rates_counts_dead_units_in_the_legend_and_hatches_them():
    rates = {"layer 1": np.r_[np.zeros(3), np.linspace(0.1, 1, 7)],
             "layer 2": torch.tensor([0.001, 0.3, 0.5, 0.9, 1.0])}  # almost silent is not dead
    ax = plotting.plot_firing_rates(rates, bins=10)
    assert legend_labels(ax) == ["layer 1: 3/10 dead", "layer 2: 0/5 dead"]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_height() == 3
    assert hatched[0].get_x() + hatched[0].get_width() <= 0  # left of every live unit's bin


def test_plot_firing_rates_rejects_rates_outside_0_1():
    with pytest.raises(ValueError, match="layer 1"):
        plotting.plot_firing_rates({"layer 1": np.array([0.2, 1.5])})


# ---------------------------------------------------------------- decision regions


def test_plot_decision_regions_with_a_torch_module_shades_its_predictions():
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 1.0], [1.0, 1.0]])
    y = np.array([0, 1, 0, 1])
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():  # logit 1 - logit 0 = 2 * x1: class 1 right of the vertical axis
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
        model.bias.zero_()
    model.train()
    ax = plotting.plot_decision_regions(model, x, y, resolution=21)
    assert model.training  # restored
    assert legend_labels(ax) == ["class 0", "class 1"]
    assert len(ax.collections) == 3  # the filled regions and one scatter per class
    regions = ax.collections[0]
    assert len(regions.get_paths()) == 2  # two filled levels: one region per class


def test_plot_decision_regions_accepts_a_numpy_callable_returning_labels_or_one_logit():
    x, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 3
    ax = plotting.plot_decision_regions(lambda p: (p[:, 0] > 0).astype(int) + (p[:, 1] > 0), x, y)
    assert legend_labels(ax) == ["class 0", "class 1", "class 2"]
    _, ax2 = plt.subplots()
    assert plotting.plot_decision_regions(lambda p: p[:, :1] - 0.5, x, y % 2, ax=ax2) is ax2


def test_plot_decision_regions_rejects_points_that_are_not_2d():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plotting.plot_decision_regions(lambda p: p[:, 0], np.zeros((5, 3)), np.zeros(5))


def test_dead_bars_of_different_layers_sit_side_by_side_so_none_hides_another():
    rates = {"layer 1": np.r_[np.zeros(3), 0.5], "layer 2": np.r_[np.zeros(5), 0.5], "layer 3": np.r_[0.0, 0.7]}
    ax = plotting.plot_firing_rates(rates, bins=10)
    hatched = sorted((p for p in ax.patches if p.get_hatch()), key=lambda p: p.get_x())
    assert [p.get_height() for p in hatched] == [3, 5, 1]
    for left, right in zip(hatched, hatched[1:], strict=False):
        assert left.get_x() + left.get_width() <= right.get_x() + 1e-12  # no overlap
    assert hatched[-1].get_x() + hatched[-1].get_width() <= 1e-12


def test_plot_functions_labels_both_panels_and_draws_no_yellow_line():
    family = {f"f{i}": (lambda x, i=i: x * i, lambda x, i=i: np.full_like(x, i)) for i in range(8)}
    ax_f, ax_df = plotting.plot_functions(family)
    assert legend_labels(ax_df) == list(family) == legend_labels(ax_f)
    colors = {plt.matplotlib.colors.to_hex(line.get_color()).lower() for line in ax_f.lines + ax_df.lines}
    assert "#f0e442" not in colors
