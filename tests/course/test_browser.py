"""The course as a person sees it, in a real browser (Debian's chromium, driven by Playwright; no browser is
downloaded): JupyterLab runs notebook 01 on the course kernel without an error; a slide deck and the course
site work with the network blocked. Screenshots go to test-artifacts/screenshots/ (look at them).

The site and its decks come from the one `course site` build of the test session (tests/course/test_site.py).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.browsing import CHROMIUM, CHROMIUM_ARGS, SHOTS, Offline
from tests.conftest import ROOT

COURSE = str(Path(sys.executable).parent / "course")

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("the browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def offline(browser):
    page = Offline(browser)
    yield page
    page.close()


def _slides_declared(name: str) -> int:
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in nb.cells)


def test_a_slide_deck_works_offline_advances_and_shows_its_figures(site, offline):
    page = offline.page
    page.goto((site / "slides" / "01_activation_functions.slides.html").as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
    assert page.evaluate("Reveal.getTotalSlides()") == _slides_declared("01_activation_functions")
    page.wait_for_function("document.querySelectorAll('.MathJax').length > 0", timeout=30_000)  # math, typeset
    offline.shot("slides-01-title.png")
    current = "section.present:not(.stack) img"  # the slide on screen (a .stack holds a slide's sub-slides)
    for _ in range(40):  # advance (slides, sub-slides and fragments) to the first slide with a figure
        page.keyboard.press("Space")
        page.wait_for_timeout(300)
        if page.locator(current).count():
            break
    figure = page.locator(current).first
    figure.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # let the slide transition finish before the screenshot
    assert figure.is_visible()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 100", figure.element_handle())
    assert page.evaluate("Reveal.getIndices().h") > 0
    offline.shot("slides-01-first-figure.png")
    assert offline.remote == [] and offline.errors == []


def test_the_site_index_opens_offline_and_every_link_resolves(site, offline):
    page = offline.page
    index = (site / "index.html").as_uri()
    page.goto(index)
    offline.shot("site-index.png")
    links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert len(links) >= 3 * 7 + 2 * 6  # page, slides and download per notebook; page and download per exercise
    for link in links:
        assert link.startswith("file://"), link
        target = Path(urllib.request.url2pathname(link.removeprefix("file://").split("#")[0]))
        assert target.is_file(), link
        if target.suffix == ".ipynb":  # a download: the clean notebook itself
            assert nbformat.read(target, as_version=4).cells
            continue
        page.goto(link)
        assert page.title(), f"{link} has no title"
    page.goto((site / "01_activation_functions.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.MathJax_Display, .MathJax').length > 0", timeout=30_000)
    assert page.locator("img[src^='data:image/png']").count() >= 3
    assert page.locator("nav.rectified a", has_text="02 ReLU and its derivative").count() == 1
    offline.shot("site-01-page.png")
    page.goto((site / "exercises" / "ex01_activations.html").as_uri())
    offline.shot("site-ex01-exercise.png")
    assert offline.remote == [] and offline.errors == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, server: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"jupyter lab exited early:\n{server.stderr.read()}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"jupyter lab did not answer on {url} within {seconds} s")


@pytest.fixture
def lab(tmp_path):
    """`course lab` on a scratch copy of the notebooks (JupyterLab autosaves outputs; the real ones stay clean)."""
    course = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    port, token = _free_port(), "rectified-browser-test"
    env = dict(os.environ, RECTIFIED_ROOT=str(course), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               HOME=str(tmp_path))
    env.pop("MPLBACKEND", None)  # as a student's JupyterLab: figures drawn inline
    server = subprocess.Popen([COURSE, "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={token}", server)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=60)


PROMPTS = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent)"
ERRORS_IN_NOTEBOOK = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells, errors = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    for (const out of cell.outputs.toJSON()) {
      if (out.output_type === 'error') errors.push(`cell ${i + 1}: ${out.ename}: ${out.evalue}`);
    }
  }
  return errors;
}"""


def test_jupyterlab_runs_notebook_01_on_the_course_kernel_without_an_error(browser, lab):
    base, token = lab
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{base}/lab/tree/notebooks/01_activation_functions.ipynb?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        kernel_name = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")
        kernel_name.filter(has_text="Rectified (Python 3)").wait_for(timeout=120_000)
        news = page.locator(".jp-toast-button", has_text="No")  # "get Jupyter news?": a toast, not a blocker
        if news.count():
            news.first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt")
        page.wait_for_function(f"() => {PROMPTS}.some(t => /\\[(\\*|\\d+)\\]/.test(t))", timeout=120_000)  # started
        page.wait_for_function(f"() => !{PROMPTS}.some(t => t.includes('*'))", timeout=600_000, polling=1000)
        figures = page.locator(".jp-OutputArea-output img")
        if figures.count() > 1:
            figures.nth(1).scroll_into_view_if_needed()
            page.wait_for_timeout(1500)  # JupyterLab paints cells lazily once scrolled to
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / "lab-01-after-run-all.png")
        assert page.evaluate(ERRORS_IN_NOTEBOOK) == []
        code_cells = sum(c.cell_type == "code" for c in nbformat.read(
            ROOT / "notebooks" / "01_activation_functions.ipynb", as_version=4).cells)
        assert prompts.count() == code_cells
        assert page.evaluate(f"() => {PROMPTS}.every(t => /\\[\\d+\\]/.test(t))")  # every cell ran
        assert page.evaluate("window.jupyterapp.commands.hasCommand('RISE:preview')")  # live slides are installed
        assert figures.count() >= 3  # the figures, drawn inline
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=10) as response:
            sessions = json.loads(response.read())
        assert [s["kernel"]["name"] for s in sessions] == ["rectified"]
    finally:
        context.close()
