"""Interactive explorers that also run headless.

`interact(f, **controls)` is `ipywidgets.interact` in a live notebook. When the environment variable
RECTIFIED_HEADLESS is set (the notebook tests, `course site` and `course slides` set it for their kernels), it
shows a note instead of the widget and calls `f` once with each control's starting value: the cell still shows
its figure, and no widget is left for an executor to wait on (headless execution of `interact` cells can stall:
jupyter/nbclient#312, jupyter/nbconvert#2029).
"""

__all__ = ["interact"]

import inspect
import os

HEADLESS_ENV = "RECTIFIED_HEADLESS"
WIDGET_NOTE = ('<p class="rectified-widget">Interactive widget: it needs a running kernel. Open this notebook in '
               "JupyterLab (<code>make lab</code>) to play with it.</p>")


def headless() -> bool:
    """True when this kernel runs without a front end that could display widgets (RECTIFIED_HEADLESS set)."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def start_value(control, default=inspect.Parameter.empty):
    """The value `ipywidgets.interact` would start a control at: a widget's value; else the function's default
    for that argument; else the first option of a list, the middle of a (min, max[, step]) tuple, or the value
    itself (a fixed argument)."""
    if hasattr(control, "value") and hasattr(control, "observe"):  # a widget
        return control.value
    if default is not inspect.Parameter.empty:
        return default
    if isinstance(control, list | dict):
        return next(iter(control.values() if isinstance(control, dict) else control))
    if isinstance(control, tuple) and len(control) in (2, 3) and all(isinstance(v, int | float) for v in control):
        low, high = control[:2]
        middle = (low + high) / 2
        return int(middle) if all(isinstance(v, int) for v in control) else middle
    return control


def interact(f, **controls):
    """`ipywidgets.interact(f, **controls)`, or, headless, the widget note and one call of f at the start values.

    Taught in notebook 00 (welcome); also used in notebooks 01, 02, 03, 04, 05, 06."""
    if not headless():
        import ipywidgets

        return ipywidgets.interact(f, **controls)
    from IPython.display import HTML, display

    display(HTML(WIDGET_NOTE))
    defaults = {name: p.default for name, p in inspect.signature(f).parameters.items()}
    f(**{name: start_value(control, defaults.get(name, inspect.Parameter.empty))
         for name, control in controls.items()})
    return f
