"""modelspec: a model exported in the kernel is rebuilt on the host equal in every parameter, buffer and output;
anything but a small nn.Sequential of whitelisted layers is refused with one line, by `export` (in the kernel,
before anything is sent) and by `build` (on the host, for any forged spec, before anything is allocated)."""

import time

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.grading import judges, plain
from course_lib.grading.kernel import modelspec
from course_lib.grading.kernel.modelspec import SpecError, build, export
from course_lib.nn import mlp

torch.set_num_threads(1)


def _models():
    torch.manual_seed(0)
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU()),
                           nn.Sequential(nn.Linear(16, 8, bias=False), nn.LeakyReLU(0.2)), nn.Linear(8, 2))
    nested[0][1].running_mean.normal_()  # buffers travel too
    return {"mlp": mlp([2, 64, 64, 2]), "nested_batchnorm": nested,
            "maxout": mlp([2, 16, 16, 2], activation="maxout", k=3),
            "prelu": mlp([2, 32, 2], activation="prelu"),
            "smooth": nn.Sequential(nn.Linear(2, 8), nn.LayerNorm(8), nn.GELU(approximate="tanh"), nn.Dropout(0.3),
                                    nn.Linear(8, 8), nn.ELU(0.5), nn.SiLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity(),
                                    nn.BatchNorm1d(8, momentum=None, affine=False), nn.Linear(8, 2))}


@pytest.mark.parametrize("name", sorted(_models()))
def test_a_rebuilt_model_equals_the_exported_one(name):
    model = _models()[name]
    rebuilt = build(judges.roundtrip(export(model)))
    assert type(rebuilt) is nn.Sequential
    want, got = model.state_dict(), rebuilt.state_dict()
    assert list(want) == list(got) and all(torch.equal(want[k], got[k]) for k in want)
    x = torch.randn(7, 2)
    model.eval(), rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))
    assert [type(m) for m in model.modules()] == [type(m) for m in rebuilt.modules()]


def test_hooks_and_replaced_methods_do_not_travel():
    model = mlp([2, 8, 2])
    model[1].register_forward_hook(lambda m, args, out: out * 0)
    model[2].forward = lambda x: torch.zeros(len(x), 2)
    rebuilt = build(judges.roundtrip(export(model)))
    x = torch.randn(5, 2)
    assert torch.equal(rebuilt(x), model[2].__class__.forward(model[2], torch.relu(model[0](x))))
    assert all(not m._forward_hooks for m in rebuilt.modules())


class MyLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x)


def _shared_relu():
    relu = nn.ReLU()
    return nn.Sequential(nn.Linear(2, 4), relu, nn.Linear(4, 4), relu)


def _tied():
    model = mlp([2, 4, 4, 4])
    model[2].weight = model[4].weight
    return model


def _frozen():
    model = mlp([2, 4, 2])
    model[0].bias.requires_grad_(False)
    return model


def _nan():
    model = mlp([2, 4, 2])
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    return model


def _deep():
    model = nn.Linear(2, 2)
    for _ in range(modelspec.MAX_DEPTH):
        model = nn.Sequential(model)
    return model


@pytest.mark.parametrize(("make", "message"), [
    (lambda: nn.Sequential(nn.Conv1d(1, 1, 1)), "the grader rebuilds only an nn.Sequential of these torch layers: "
                                                "Sequential, Linear, ReLU, .*; found a Conv1d"),
    (lambda: nn.Sequential(MyLinear(2, 2)), "found a MyLinear"),
    (Block, "found a Block"),
    (lambda: mlp([2, 1025, 2]), "Linear.out_features must be a whole number from 1 to 1024, got 1025"),
    (lambda: mlp([2, 100, 100, 100, 2]), "more than 20,000 parameters and buffers"),
    (lambda: nn.Sequential(*[nn.ReLU() for _ in range(modelspec.MAX_LAYERS)]), "more than 16 layers"),
    (lambda: nn.Sequential(nn.Linear(2, 1000), nn.ReLU(), nn.ReLU(), nn.Linear(1000, 2)),
     "compute more than 1,536 numbers per example"),
    (_deep, "nested more than 4 deep"),
    (lambda: mlp([2, 4, 2]).double(), r"Linear.weight must be float32 of shape \(4, 2\), got float64"),
    (_shared_relu, "one ReLU object is used at two places"),
    (_tied, "a parameter of a Linear is shared with another layer"),
    (_frozen, "is frozen"),
    (_nan, "Linear.weight holds nan or inf"),
    (lambda: "a model", "must be a torch nn.Module, not a str"),
])
def test_export_refuses_what_the_grader_does_not_train_in_one_line(make, message):
    with pytest.raises(SpecError, match=message) as raised:
        export(make())
    assert "\n" not in str(raised.value)


def _spec():
    torch.manual_seed(0)
    return judges.roundtrip(export(mlp([2, 8, 2])))


def _with(path, value):
    """The spec of mlp([2, 8, 2]) with the item at `path` (keys and indices) set to `value`."""
    spec = _spec()
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(("spec", "message"), [
    (None, "the grader rebuilds only these torch layers"),
    (10**400, "the grader rebuilds only these torch layers"),
    ({"layer": "Conv1d", "args": {}, "state": {}}, "got 'Conv1d'"),
    ({"layer": "builtins.eval"}, "got 'builtins.eval'"),
    ({"layer": "Sequential", "children": "abc"}, "a Sequential must be"),
    ({"layer": "Sequential", "children": [], "code": "x"}, "a Sequential must be"),
    (_with(["children", 0, "args", "in_features"], True), "Linear.in_features must be a whole number"),
    (_with(["children", 0, "args", "in_features"], 10**400), "Linear.in_features must be a whole number"),
    (_with(["children", 0, "args", "in_features"], 10**9), "Linear.in_features must be a whole number"),
    (_with(["children", 0, "args", "in_features"], 3), r"Linear.weight must be float32 of shape \(8, 3\)"),
    (_with(["children", 0, "args", "bias"], 1), "Linear.bias must be True or False"),
    (_with(["children", 0, "args", "extra"], 1), "Linear takes the arguments"),
    (_with(["children", 0, "state", "weight"], np.zeros((8, 2), np.float64)), "must be float32"),
    (_with(["children", 0, "state", "weight"], [[0.0] * 2] * 8), "must be float32 of shape"),
    (_with(["children", 0, "state", "extra"], np.zeros(1, np.float32)), "a Linear has the state"),
    (_with(["children", 0, "state", "bias"], np.full(8, np.inf, np.float32)), "holds nan or inf"),
    (_with(["children", 1, "args"], {"inplace": True}), r"ReLU takes the arguments \[\]"),
    (_with(["children", 0, "code"], "x"), "a Linear must be"),
    ({"layer": "Sequential", "children": [{"layer": "Linear", "args": {"in_features": 1024, "out_features": 1024,
                                                                       "bias": True}, "state": {}}]},
     "more than 20,000 parameters"),
    ({"layer": "Sequential", "children": [{"layer": "ReLU", "args": {}, "state": {}}] * 40}, "more than 16 layers"),
])
def test_build_refuses_a_forged_spec_in_one_line_before_allocating(spec, message):
    with pytest.raises(SpecError, match=message) as raised:
        build(judges.roundtrip(spec))
    assert "\n" not in str(raised.value)


def test_a_spec_nested_past_any_depth_is_refused_at_the_cap():
    spec = {"layer": "ReLU", "args": {}, "state": {}}
    for _ in range(50):
        spec = {"layer": "Sequential", "children": [spec]}
    with pytest.raises(SpecError, match="nested more than 4 deep"):
        build(spec)


def test_a_spec_is_plain_data_and_the_largest_allowed_model_is_quick_to_rebuild():
    torch.manual_seed(0)
    largest = mlp([2, 136, 136, 2])  # 19,314 parameters
    encoded = plain.encode(export(largest))
    start = time.process_time()
    build(plain.decode(encoded))
    assert time.process_time() - start < 0.5
