"""A small 1-D convolutional network for MNIST-1D, with any activation of the course.

Input (N, length) signals (length 40 for MNIST-1D), seen as one channel (N, 1, length). Three Conv1d layers
of `channels` channels with stride 2 and padding 1 (kernels 5, 3, 3 by default), each followed by its own
fresh activation, then a flatten and a Linear read-out to (N, n_classes) logits. This is the layout of the
CNN in the MNIST-1D reference code (Greydanus 2020): with 25 channels it has about 5.2k parameters.

Conventions: a conv *unit* is a channel (axis 1 of (N, C, L)), as in `course_lib.diagnostics`. For maxout
every conv produces channels * k maps and a GroupMax(k, dim=1) keeps, at each position, the largest of each
unit's k contiguous maps, so the convolutions have k times the weights. PReLU gets one slope per channel.
"""

__all__ = ["cnn1d"]

import math

from torch import nn

from course_lib.nn import _INIT_GAIN_FOR, GroupMax, make_activation


def conv_out_length(length: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    """Length of Conv1d's output for an input of `length` positions: floor((L + 2p - k) / s) + 1."""
    out = math.floor((length + 2 * padding - kernel) / stride) + 1
    if out < 1:
        raise ValueError(f"a kernel of {kernel} does not fit an input of length {length} with padding {padding}")
    return out


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, padding: int, activation: str,
                activation_kw: dict) -> list[nn.Module]:
    """Conv1d + a fresh activation; maxout widens the conv to c_out * k maps and groups them on axis 1."""
    if activation == "maxout":
        k = activation_kw.get("k", 2)
        return [nn.Conv1d(c_in, c_out * k, kernel, stride, padding), GroupMax(k, dim=1)]
    if activation == "prelu":
        activation_kw = {"num_parameters": c_out, **activation_kw}
    return [nn.Conv1d(c_in, c_out, kernel, stride, padding), make_activation(activation, **activation_kw)]


def cnn1d(length: int = 40, n_classes: int = 10, activation: str = "relu", channels: int = 25,
          kernels: tuple[int, ...] = (5, 3, 3), stride: int = 2, padding: int = 1, init: str = "kaiming",
          **activation_kw) -> nn.Sequential:
    """A CNN (N, length) -> (N, n_classes): len(kernels) strided conv layers, then a linear read-out.

    init: "kaiming" (He et al. 2015, with the gain `course_lib.nn.mlp` uses for the activation; biases 0)
    or "torch" (torch's default). activation_kw go to the activation (e.g. negative_slope, k for maxout).

    Used in exercise ex06.
    """
    layers: list[nn.Module] = [nn.Unflatten(1, (1, length))]
    c_in, size = 1, length
    for kernel in kernels:
        layers += _conv_block(c_in, channels, kernel, stride, padding, activation, activation_kw)
        c_in, size = channels, conv_out_length(size, kernel, stride, padding)
    layers += [nn.Flatten(), nn.Linear(channels * size, n_classes)]
    model = nn.Sequential(*layers)
    if init == "kaiming":
        slope = activation_kw.get("init", 0.25) if activation == "prelu" else activation_kw.get("negative_slope", 0.01)
        _kaiming(model, _INIT_GAIN_FOR.get(activation, "relu"), slope)
    elif init != "torch":
        raise ValueError(f"unknown init {init!r}; valid: kaiming, torch")
    return model


def _kaiming(model: nn.Module, nonlinearity: str, negative_slope: float) -> None:
    """He-normal weights (fan_in) for every conv and linear layer, zero biases."""
    for layer in model.modules():
        if isinstance(layer, nn.Conv1d | nn.Linear):
            nn.init.kaiming_normal_(layer.weight, a=negative_slope, nonlinearity=nonlinearity)
            nn.init.zeros_(layer.bias)


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
