"""Tests for course_lib.live: interact runs live with ipywidgets and headless without any widget."""

import ipywidgets
import pytest

from course_lib import live


def test_start_values_follow_ipywidgets_interact():
    assert live.start_value(ipywidgets.FloatSlider(value=0.5, min=-1, max=1)) == 0.5
    assert live.start_value(["mnist1d", "digits"]) == "mnist1d"
    assert live.start_value(["a", "b"], default="b") == "b"  # the function's default wins, as in interact
    assert live.start_value((2, 40)) == 21 and live.start_value((0.0, 1.0)) == 0.5
    assert live.start_value("fixed") == "fixed"


def test_headless_interact_calls_the_function_once_at_the_start_values_and_makes_no_widget(monkeypatch):
    monkeypatch.setenv(live.HEADLESS_ENV, "1")
    calls = []
    made = []
    monkeypatch.setattr(ipywidgets, "interact", lambda *a, **k: made.append(a))

    def show(x=1.0, name="relu", depth=15):
        calls.append((x, name, depth))

    assert live.interact(show, x=ipywidgets.FloatSlider(value=-1.0, min=-3), name=["sigmoid", "relu"],
                         depth=ipywidgets.IntSlider(value=3)) is show
    assert calls == [(-1.0, "relu", 3)] and made == []


@pytest.mark.parametrize("value", ["", "0"])
def test_without_the_headless_variable_interact_is_ipywidgets_interact(monkeypatch, value):
    monkeypatch.setenv(live.HEADLESS_ENV, value)
    made = []
    monkeypatch.setattr(ipywidgets, "interact", lambda f, **k: made.append((f, k)) or "widget")
    assert live.interact(print, x=ipywidgets.IntSlider()) == "widget" and made[0][0] is print
