"""`course slides`: an executed reveal.js deck per notebook, one slide per slide-metadata cell, every asset local;
an unknown notebook is refused in one line that lists the notebooks."""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib import rendering
from course_lib.paths import notebooks
from course_lib.slides import UnknownNotebook, find_notebook

COURSE = str(Path(sys.executable).parent / "course")
NOTEBOOKS = notebooks()


def _slide_types(path: Path) -> list[str]:
    """Each cell's slideshow type, as the notebook declares it."""
    nb = nbformat.read(path, as_version=4)
    return [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells]


def test_an_unknown_notebook_is_refused_in_one_line_that_lists_the_notebooks(tmp_path):
    result = subprocess.run([COURSE, "slides", "nope.ipynb", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    error = result.stderr.strip()
    assert error.count("\n") == 0 and "Traceback" not in result.stderr + result.stdout
    assert "no notebook 'nope.ipynb'" in error and all(p.stem in error for p in NOTEBOOKS)
    assert not (tmp_path / "out").exists()


def test_a_notebook_is_found_by_stem_file_name_or_path():
    first = NOTEBOOKS[1]
    for name in (first.stem, first.name, f"notebooks/{first.name}"):
        assert find_notebook(name) == first
    with pytest.raises(UnknownNotebook):
        find_notebook("01")


def test_widget_views_become_a_note_and_the_saved_widget_state_is_dropped():
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"state": {}}})
    widget = nbformat.v4.new_output("display_data", {"text/plain": "interactive(...)",
                                                     rendering.WIDGET_MIME: {"model_id": "abc"}})
    text = nbformat.v4.new_output("stream", name="stdout", text="kept\n")
    nb.cells = [nbformat.v4.new_code_cell("interact(f)", outputs=[widget, text])]
    rendering.replace_widgets(nb)
    assert "widgets" not in nb.metadata
    assert nb.cells[0].outputs[0].data == {"text/html": rendering.WIDGET_NOTE}
    assert nb.cells[0].outputs[1] == text


def test_links_between_notebooks_point_at_the_rendered_pages_only_for_course_notebooks():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("[next](02_b.ipynb), [part](02_b.ipynb#sec), [other](x.ipynb), "
                                              "[web](https://example.org/02_b.ipynb)")]
    rendering.retarget_links(nb, ["01_a", "02_b"], ".slides.html")
    assert nb.cells[0].source == ("[next](02_b.slides.html), [part](02_b.slides.html#sec), [other](x.ipynb), "
                                  "[web](https://example.org/02_b.ipynb)")


@pytest.mark.slow
def test_course_slides_renders_an_executed_offline_deck_with_one_section_per_slide(tmp_path):
    out = tmp_path / "slides"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the kernel must set its own
    result = subprocess.run([COURSE, "slides", "00_welcome", "--out", str(out)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    deck = out / "00_welcome.slides.html"
    assert result.stdout.strip() == f"wrote {deck}" and result.stderr == ""
    html = deck.read_text(encoding="utf-8")
    # A slide is an outer <section> holding its first sub-slide's <section>; a sub-slide adds an inner one.
    types = _slide_types(NOTEBOOKS[0])
    assert html.count("<section") == 2 * types.count("slide") + types.count("subslide")
    assert "torch threads: 1" in html  # executed, on the course kernel (which sets one thread)
    assert rendering.WIDGET_NOTE in html and "01_activation_functions.slides.html" in html
    for url in re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", url), url
        assert (out / url.split("?")[0]).is_file(), url
    assert (out / "_static" / "revealjs" / "plugin" / "notes" / "notes.js").is_file()


@pytest.mark.slow
def test_a_notebook_that_fails_still_gets_its_deck_and_the_command_fails(tmp_path):
    course = tmp_path / "course"
    (course / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rectified", "display_name": "Rectified",
                                                            "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken", metadata={"slideshow": {"slide_type": "slide"}}),
                nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nbformat.write(nb, course / "notebooks" / "01_broken.ipynb")
    result = subprocess.run([COURSE, "slides", "01_broken", "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, RECTIFIED_ROOT=str(course)))
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "failed to execute: cell 2 (In [1]) raised ValueError: boom" in result.stdout
    assert "ValueError" in (tmp_path / "out" / "01_broken.slides.html").read_text(encoding="utf-8")
