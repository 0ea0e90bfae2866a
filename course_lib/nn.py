"""Networks for the course in torch: Maxout, a factory of fresh activations, an MLP builder, initialisers.

Conventions: a batch is (N, features); `nn.Linear` computes z = x W^T + b with W of shape (out, in).
Maxout groups the pre-activation in *contiguous* blocks of k on the last axis: z[..., j*k:(j+1)*k] are
unit j's pieces, the grouping `course_lib.activations.maxout(z, k)` uses in numpy. When pieces tie, the
gradient goes to one of them (the one `torch.max` returns), never split.
"""

__all__ = ["ACTIVATIONS", "GroupMax", "Maxout", "make_activation", "default_init", "mlp"]

import torch
from torch import nn

# "identity" builds a purely linear network: the baseline that shows why a nonlinearity is needed.
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "sigmoid", "tanh", "maxout",
               "identity")

# The nonlinearity whose gain Kaiming init uses for each activation (see `init_weights`). SELU gets "linear"
# (gain 1), as torch's documentation of calculate_gain advises for self-normalising nets: that *is* LeCun normal.
_INIT_GAIN_FOR = {"leaky_relu": "leaky_relu", "prelu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid",
                  "maxout": "linear", "identity": "linear", "selu": "linear"}

# The initialisation an activation was designed with, where it is not Kaiming's (see `default_init`).
_DESIGNED_INIT = {"selu": "lecun"}


class GroupMax(nn.Module):
    """Max over contiguous groups of k along `dim`: (..., units*k) -> (..., units).

    On its own it is the activation of a Maxout layer; `make_activation("maxout", k=k)` returns one, and
    `course_lib.diagnostics.DeadUnitMonitor` hooks it to see which piece wins.

    Taught in notebook 05 (Maxout); also used in exercise ex05.
    """

    def __init__(self, k: int = 2, dim: int = -1):
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"GroupMax needs an integer group size k >= 1, got k={k!r}")
        self.k, self.dim = k, dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        width = z.shape[self.dim]
        if width % self.k:
            raise ValueError(f"GroupMax(k={self.k}): width {width} is not divisible by k={self.k}")
        grouped = z.unflatten(self.dim, (width // self.k, self.k))
        return grouped.max(dim=self.dim if self.dim < 0 else self.dim + 1).values

    def extra_repr(self) -> str:
        return f"k={self.k}, dim={self.dim}"


class Maxout(nn.Module):
    """Goodfellow et al. (2013): out_j = max_i (x W_i^T + b_i) over unit j's k affine pieces.

    One Linear(in_features, out_features*k) followed by GroupMax(k): (N, in_features) -> (N, out_features).
    It has k times the weights of Linear(in_features, out_features).

    Taught in notebook 05 (Maxout); also used in exercise ex05.
    """

    def __init__(self, in_features: int, out_features: int, k: int = 2):
        super().__init__()
        if out_features < 1:
            raise ValueError(f"Maxout needs out_features >= 1, got {out_features}")
        group_max = GroupMax(k)  # checks k before Linear sees out_features * k
        self.in_features, self.out_features, self.k = in_features, out_features, k
        self.linear = nn.Linear(in_features, out_features * k)
        self.group_max = group_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.group_max(self.linear(x))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}"


_FACTORIES = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "prelu": nn.PReLU, "elu": nn.ELU, "selu": nn.SELU,
              "gelu": nn.GELU,
              "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "maxout": GroupMax,
              "identity": nn.Identity}


def make_activation(name: str, **kw) -> nn.Module:
    """A *new* activation module on every call; `kw` go to its constructor.

    Never share one instance between layers: a shared PReLU would tie the slopes of every layer together.
    leaky_relu takes negative_slope (default 0.01), prelu num_parameters and init, maxout k (default 2).

    Taught in notebook 01 (activation functions).
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")
    return _FACTORIES[name](**kw)


def default_init(activation: str) -> str:
    """The weight scheme `mlp` uses for `activation` unless told otherwise: "lecun" for SELU, else "kaiming".

    SELU (Klambauer et al. 2017, "Self-Normalizing Neural Networks") is built so that, with weights of variance
    1/fan_in (LeCun normal) and no normalisation layer, the mean and variance of every layer's activations are
    pulled towards 0 and 1: a fixed point of the layer map. With Kaiming's variance 2/fan_in, or after a
    BatchNorm, it is no longer the activation its authors analysed. `mlp` adds no normalisation layers.

    Taught in notebook 06 (capstone comparison).
    """
    return _DESIGNED_INIT.get(activation, "kaiming")


def _hidden_layer(n_in: int, n_out: int, activation: str, activation_kw: dict) -> list[nn.Module]:
    """Linear + a fresh activation, or one Maxout layer; PReLU gets one slope per unit unless told."""
    if activation == "maxout":
        return [Maxout(n_in, n_out, **activation_kw)]
    if activation == "prelu":
        slope = activation_kw.get("slope", 0.25)
        activation_kw = {"num_parameters": n_out, "init": slope, **{k: v for k, v in activation_kw.items()
                                                                    if k != "slope"}}
    return [nn.Linear(n_in, n_out), make_activation(activation, **activation_kw)]


def mlp(sizes: list[int], activation: str = "relu", init: str | None = None, bias: float | None = 0.0,
        output_activation: str | None = None, **activation_kw) -> nn.Sequential:
    """A fully connected net sizes[0] -> sizes[1] -> ... -> sizes[-1], input (N, sizes[0]).

    Every hidden layer gets its own activation (or is a Maxout(in, out, k) layer, k from activation_kw,
    default 2); the last layer is linear unless `output_activation` names one (e.g. "relu" for a
    non-negative target). `init` picks the weights ("kaiming", "lecun", "xavier" or "torch" for torch's
    default; None: `default_init(activation)`, i.e. lecun for SELU, kaiming otherwise), `bias` a constant
    for every bias (e.g. -1.0 to provoke dead units; None keeps torch's default).
    PReLU's starting slope is `slope` (default 0.25; `init` already names the weight scheme).

    Taught in notebook 01 (activation functions); also used in notebooks 02, 05 and exercise ex03.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got sizes={sizes}")
    if output_activation == "maxout":
        raise ValueError("output_activation='maxout' would change the output width; use a Maxout layer")
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += _hidden_layer(n_in, n_out, activation, activation_kw)
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    if output_activation is not None:
        out_kw = {"num_parameters": sizes[-1]} if output_activation == "prelu" else {}
        layers.append(make_activation(output_activation, **out_kw))
    model = nn.Sequential(*layers)
    init = default_init(activation) if init is None else init
    prelu = activation == "prelu"
    slope = activation_kw.get("slope", 0.25) if prelu else activation_kw.get("negative_slope", 0.01)
    return init_weights(model, init, bias, _INIT_GAIN_FOR.get(activation, "relu"), slope)


def init_weights(model: nn.Module, scheme: str = "kaiming", bias: float | None = 0.0,
                 nonlinearity: str = "relu", negative_slope: float = 0.01) -> nn.Module:
    """Initialise every nn.Linear in `model` in place and return the model.

    kaiming: W ~ N(0, gain^2 / fan_in), gain = sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu
      (torch's `calculate_gain`). He et al. (2015): ReLU zeroes half of a symmetric pre-activation, so
      E[relu(z)^2] = Var(z) / 2, and the factor 2 keeps that second moment the same in every layer, however
      deep. For maxout (k=2) gain 1 does the same: E[max(a, b)^2] = Var(a) for a, b iid N(0, s^2).
    lecun: W ~ N(0, 1 / fan_in), LeCun et al. (1998, "Efficient BackProp"); the init SELU's fixed point of
      mean 0 and variance 1 is derived for (Klambauer et al. 2017). Same as kaiming with nonlinearity "linear".
    xavier: W ~ N(0, 2 / (fan_in + fan_out)), Glorot & Bengio (2010), derived for tanh-like units that are
      linear near 0; it balances forward and backward variance. `nonlinearity` is not used.
    torch: leave torch's default weights (uniform, +-1/sqrt(fan_in)).
    Biases are set to the constant `bias`; None leaves them as they are.
    """
    if scheme not in ("kaiming", "lecun", "xavier", "torch"):
        raise ValueError(f"unknown init scheme {scheme!r}; valid: kaiming, lecun, xavier, torch")
    for layer in model.modules():
        if not isinstance(layer, nn.Linear):
            continue
        if scheme == "kaiming":
            nn.init.kaiming_normal_(layer.weight, a=negative_slope, mode="fan_in", nonlinearity=nonlinearity)
        elif scheme == "lecun":
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="linear")
        elif scheme == "xavier":
            nn.init.xavier_normal_(layer.weight)
        if bias is not None and layer.bias is not None:
            nn.init.constant_(layer.bias, bias)
    return model
