"""`course site`: every notebook executed into a static site that works offline, links that resolve, exercises
without solutions, and a failing notebook that still gets its page, names its cell and fails the command.

The real site is built once per test session (conftest's `site`); tests/course/test_browser.py opens the same build.
"""

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from course_lib import rendering
from course_lib.paths import notebooks
from tests.conftest import ROOT

COURSE = str(Path(sys.executable).parent / "course")
NOTEBOOKS = notebooks()
EXERCISES = sorted(p for p in (ROOT / "exercises").glob("*/*.ipynb") if p.stem == p.parent.name)


class _Page(HTMLParser):
    """The text of a page, every URL it references (by tag and attribute), and its inline scripts and styles."""

    def __init__(self, text: str):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.chunks: list[str] = []
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._tag = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))

    def handle_endtag(self, tag):
        self._tag = None

    def handle_data(self, data):
        self.chunks.append(data)
        if self._tag in self.inline:
            self.inline[self._tag].append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def _parse(path: Path) -> _Page:
    return _Page(path.read_text(encoding="utf-8"))


def _local_target(page: Path, url: str) -> Path | None:
    """The file a relative URL on `page` points to, or None for an in-page anchor or an external link."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//") or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def code_cells(path: Path) -> int:
    return sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)


def _html_files(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


@pytest.mark.slow
def test_site_lists_every_notebook_with_its_slides_and_every_exercise(site):
    index = _parse(site / "index.html")
    hrefs = {value for _, _, value in index.refs}
    for path in NOTEBOOKS:
        assert {f"{path.stem}.html", f"slides/{path.stem}.slides.html", f"notebooks/{path.name}"} <= hrefs
        assert (site / f"{path.stem}.html").is_file() and (site / "slides" / f"{path.stem}.slides.html").is_file()
    for path in EXERCISES:
        assert {f"exercises/{path.stem}.html", f"exercises/{path.name}"} <= hrefs
    for path in NOTEBOOKS:  # the course map states each notebook's time, read from the notebook itself
        first = nbformat.read(path, as_version=4).cells[0].source
        assert re.search(r"^# (.+)$", first, re.MULTILINE)[1] in index.text


@pytest.mark.slow
def test_every_lecture_page_is_executed_with_its_figures_and_no_errors(site):
    for path in NOTEBOOKS:
        page = (site / f"{path.stem}.html").read_text(encoding="utf-8")
        assert "failed to execute" not in page and "Traceback" not in page, path.stem
        assert len(re.findall(r"In\s\[\d+\]:", page)) == code_cells(path), f"{path.stem}: not every cell ran"
        if path.stem != "00_welcome":  # the welcome notebook draws no figure
            assert page.count('src="data:image/png;base64,') >= 1, f"{path.stem} has no figure"


@pytest.mark.slow
def test_pages_and_decks_load_scripts_styles_and_fonts_only_from_the_site_folder(site):
    absolute = re.compile(r"(https?:)?//[\w-]+\.[\w.-]+", re.IGNORECASE)
    for page in _html_files(site):
        parsed = _parse(page)
        for tag, _, url in parsed.refs:
            if tag != "a":  # a link may leave the site; nothing else may load from outside it
                assert not absolute.match(url), f"{page.name} loads {url}"
                assert url.startswith("data:") or _local_target(page, url).exists(), f"{page.name}: {url} missing"
        for script in parsed.inline["script"]:
            assert not re.search(r"https?://", script), f"{page.name} has a script that fetches from the network"
        for style in parsed.inline["style"]:
            rules = re.sub(r"/\*.*?\*/", "", style, flags=re.DOTALL)
            assert not re.search(r"(@import|url\()\s*['\"]?(https?:)?//", rules), f"{page.name} styles load remotely"
    mathjax = site / "_static" / "mathjax"
    assert (mathjax / "MathJax.js").is_file() and any((mathjax / "fonts").rglob("*.woff"))
    assert (site / "_static" / "revealjs" / "dist" / "reveal.js").is_file()


@pytest.mark.slow
def test_every_relative_link_in_the_site_resolves_to_a_file(site):
    broken = []
    for page in _html_files(site):
        for tag, _, url in _parse(page).refs:
            target = _local_target(page, url)
            if tag == "a" and target is not None and not target.exists():
                broken.append(f"{page.relative_to(site)} -> {url}")
    assert not broken
    pages = {url for _, _, url in _parse(site / "01_activation_functions.html").refs}
    assert {"00_welcome.html", "02_relu_and_its_derivative.html", "index.html"} <= pages  # previous, next, home


def _solution_lines(assignment: str) -> set[str]:
    """Code the instructor's solution has between its solution markers (never shown to students)."""
    source = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    lines, inside = set(), False
    for cell in source.cells:
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                lines.add(line.strip())
    return lines


@pytest.mark.slow
def test_exercise_pages_are_the_student_versions_without_solutions(site):
    assert EXERCISES
    for path in EXERCISES:
        text = _parse(site / "exercises" / f"{path.stem}.html").text
        assert "raise NotImplementedError()" in text
        student = path.read_text(encoding="utf-8")
        leaked = [line for line in _solution_lines(path.stem) if line in text and line not in student]
        assert not leaked, f"{path.stem} shows solution code: {leaked[:3]}"
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert (site / "exercises" / path.name).read_bytes() == path.read_bytes()


def _tiny_course(root: Path, cells: dict[str, list[str]]) -> Path:
    """A course folder with one notebook per entry (its code cells) and no exercises, for RECTIFIED_ROOT."""
    (root / "notebooks").mkdir(parents=True)
    (root / "exercises").mkdir()
    for name, sources in cells.items():
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rectified", "display_name": "Rectified",
                                                                "language": "python"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\n**Time:** 1 minute.")]
        nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    return root


@pytest.mark.slow
def test_a_notebook_that_fails_still_gets_its_page_naming_the_cell_and_the_command_fails(tmp_path):
    course = _tiny_course(tmp_path / "course", {"00_fine": ["print('fine')"],
                                                 "01_broken": ["x = 1", "raise ValueError('boom')", "print('never')"]})
    out = tmp_path / "out"
    result = subprocess.run([COURSE, "site", "--out", str(out)], capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, RECTIFIED_ROOT=str(course)))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = result.stderr.strip()
    assert error.count("\n") == 0 and "01_broken" in error and "cell 3" in error and "00_fine" not in error
    broken = (out / "01_broken.html").read_text(encoding="utf-8")
    assert "This notebook failed to execute" in broken and "cell 3 (In [2]) raised ValueError: boom" in broken
    assert "<pre>never" not in broken  # nothing ran after the failing cell
    fine = (out / "00_fine.html").read_text(encoding="utf-8")
    assert "<pre>fine" in fine and "failed to execute" not in fine
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("failed: cell 3") == 1 and re.search(r"01_broken\.html.*failed: cell 3", index)


def test_failure_message_names_the_first_cell_with_an_error():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("1", execution_count=1),
                nbformat.v4.new_code_cell("1/0", execution_count=2)]
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                  traceback=[])]
    message = rendering.failure_message(nb, RuntimeError("stopped"))
    assert message == "cell 3 (In [2]) raised ZeroDivisionError: division by zero"


def test_site_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "thesis.html").write_text("mine")
    result = subprocess.run([COURSE, "site", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "not written by `course site`" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert (tmp_path / "thesis.html").read_text() == "mine" and not (tmp_path / "index.html").exists()


def test_site_may_replace_a_slides_folder_that_course_slides_wrote_but_nothing_else(tmp_path):
    from course_lib import site, slides

    out = tmp_path / "_build"
    (out / "slides").mkdir(parents=True)
    assert not site.written_by_us(out)  # a slides/ folder somebody else made
    (out / "slides" / slides.MARKER).touch()
    assert site.written_by_us(out)
    (out / "notes.txt").write_text("mine")
    assert not site.written_by_us(out)


@pytest.mark.slow
def test_course_slides_and_course_site_work_in_either_order_in_their_default_folders(tmp_path):
    course = _tiny_course(tmp_path / "course", {"00_fine": ["print('fine')"]})
    env = dict(os.environ, RECTIFIED_ROOT=str(course))
    for command in ("slides", "site", "slides", "site"):
        result = subprocess.run([COURSE, command], capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, (command, result.stderr)
    build = course / "site" / "_build"
    assert (build / "index.html").is_file() and (build / "slides" / "00_fine.slides.html").is_file()
