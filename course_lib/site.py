"""`course site`: the whole course as static HTML that opens from the file system or any static host, offline.

Layout of the output folder (default site/_build/):

    index.html                  the course map: notebooks with their time, slides and downloads; the exercises
    NN_name.html                each lecture notebook, executed on the course kernel, with its figures
    slides/NN_name.slides.html  its reveal.js deck (slides.py)
    notebooks/NN_name.ipynb     the clean notebook, to download
    exercises/<ex>.html, .ipynb the student version of each exercise (from exercises/: never the solutions)
    _static/                    reveal.js and MathJax, copied from installed packages (rendering.py)

A notebook that fails to execute still gets its page, with the outputs up to the failing cell and a banner
naming that cell; `build` reports it, and `course site` exits non-zero.
"""

import copy
import html
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from course_lib import rendering, slides
from course_lib.errors import CourseError
from course_lib.grading.nbgrader_api import CourseFolders
from course_lib.paths import course_root, notebooks

DEFAULT_OUT = ("site", "_build")
MARKER = ".rectified-site"  # marks a folder `build` wrote, and so may empty and rewrite
TEMPLATE = "rectified_page.html.j2"
STYLE = """
nav.rectified { font: 15px/1.5 system-ui, sans-serif; padding: 0.6em 1em; border-bottom: 1px solid #ddd;
                display: flex; gap: 1.2em; flex-wrap: wrap; background: #fafafa; }
nav.rectified a { text-decoration: none; color: #0b5cad; }
.rectified-failure { font: 15px/1.5 system-ui, sans-serif; margin: 1em; padding: 0.8em 1em;
                     border-left: 5px solid #c62828; background: #fdecea; }
.rectified-widget { border-left: 4px solid #e69f00; padding: 0.3em 0.8em; background: #fff7e6; }
"""

# nbconvert's lab template, offline, with a navigation bar and (when the run failed) a banner on top.
PAGE_TEMPLATE = "{%- extends 'index.html.j2' -%}" + rendering.OFFLINE_BLOCKS + """
{% block extra_css %}<style>""" + STYLE + """</style>{% endblock extra_css %}
{% block body_header %}{{ super() }}{{ resources.rectified_header }}{% endblock body_header %}
"""


class SiteError(CourseError, ValueError):
    """The output folder cannot be used (it holds something `course site` did not write)."""


@dataclass
class Site:
    """What `build` wrote: the index page, and for each notebook that failed to run, which cell stopped it."""

    index: Path
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class Entry:
    """One lecture notebook or exercise as the index lists it."""

    stem: str
    title: str
    time: str
    failure: str | None = None


def exporter(static_prefix: str) -> HTMLExporter:
    """nbconvert's HTML exporter with the offline page template; `static_prefix` is _static/ seen from the page."""
    return HTMLExporter(extra_loaders=[DictLoader({TEMPLATE: PAGE_TEMPLATE})], template_file=TEMPLATE,
                        mathjax_url=rendering.mathjax_url(static_prefix))


def describe(nb: nbformat.NotebookNode, stem: str) -> Entry:
    """Title (the first heading) and time (the "**Time:** ..." phrase) that the notebook states."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    title = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    time = re.search(r"\*\*Time:\*\*\s*([^.\n]+)", text)
    return Entry(stem, title[1].strip() if title else stem, time[1].strip() if time else "")


def navigation(links: list[tuple[str, str]]) -> str:
    """A bar of (label, href) links."""
    items = "".join(f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in links)
    return f'<nav class="rectified">{items}</nav>'


def failure_banner(failure: str | None) -> str:
    """The banner on a page whose notebook did not run to the end."""
    if not failure:
        return ""
    return (f'<div class="rectified-failure" role="alert"><strong>This notebook failed to execute:</strong> '
            f"{html.escape(failure)}. The outputs below stop at that cell.</div>")


def write_page(nb: nbformat.NotebookNode, dest: Path, header: str, static_prefix: str = "_static") -> Path:
    """Render a notebook to `dest` with `header` (navigation, banner) on top."""
    nb = rendering.replace_widgets(nb)
    body, _ = exporter(static_prefix).from_notebook_node(nb, resources={"rectified_header": header})
    dest.write_text(body, encoding="utf-8")
    return dest


def label(entry: Entry) -> str:
    """A short name for navigation: the number and the title up to its colon ("01 Activation functions")."""
    return f"{entry.stem[:2]} {entry.title.split(':')[0]}"


def lecture_pages(out: Path, progress: Callable[[str], None]) -> list[Entry]:
    """Execute every lecture notebook; write its page, its deck and a clean copy to download."""
    paths = notebooks()
    stems = [p.stem for p in paths]
    entries = [describe(nbformat.read(p, as_version=4), p.stem) for p in paths]
    for i, (path, entry) in enumerate(zip(paths, entries, strict=True)):
        start = time.perf_counter()
        run = rendering.execute(path)
        entry.failure = run.failure
        progress(f"{path.stem}: " + (f"FAILED, {run.failure}" if run.failure else
                                     f"executed in {time.perf_counter() - start:.0f} s"))
        shutil.copy2(path, out / "notebooks" / path.name)
        slides.render(copy.deepcopy(run.nb), out / "slides" / slides.deck_name(path), static_prefix="../_static")
        links = [("Rectified: course map", "index.html")]
        links += [(f"← {label(entries[i - 1])}", f"{stems[i - 1]}.html")] if i > 0 else []
        links += [(f"{label(entries[i + 1])} →", f"{stems[i + 1]}.html")] if i + 1 < len(paths) else []
        links += [("Slides", f"slides/{slides.deck_name(path)}"), ("Download .ipynb", f"notebooks/{path.name}")]
        nb = rendering.retarget_links(run.nb, stems, ".html")
        write_page(nb, out / f"{path.stem}.html", navigation(links) + failure_banner(run.failure))
    return entries


def exercise_pages(out: Path) -> list[Entry]:
    """The student version of every exercise (exercises/<ex>/<ex>.ipynb), as a page and a download."""
    entries = []
    for path in sorted(CourseFolders().step("release").glob("*/*.ipynb")):
        if path.stem != path.parent.name:
            continue
        nb = nbformat.read(path, as_version=4)
        shutil.copy2(path, out / "exercises" / path.name)
        links = [("Rectified: course map", "../index.html"), ("Download .ipynb", path.name)]
        write_page(nb, out / "exercises" / f"{path.stem}.html", navigation(links), static_prefix="../_static")
        entries.append(describe(nb, path.stem))
    return entries


def link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def row(*cells: str) -> str:
    """A table row; a cell given as ("time", text) gets that class (times do not wrap)."""
    return "<tr>" + "".join(f"<td>{c}</td>" if isinstance(c, str) else f'<td class="{c[0]}">{c[1]}</td>'
                            for c in cells) + "</tr>"


def index_page(lectures: list[Entry], exercises: list[Entry]) -> str:
    """The course map: every notebook with its time, page, slides and download; then the exercises."""
    def lecture_row(e: Entry) -> str:
        status = f' <span class="failed">failed: {html.escape(e.failure)}</span>' if e.failure else ""
        return row(e.stem[:2], link(f"{e.stem}.html", e.title) + status, ("time", html.escape(e.time)),
                   link(f"slides/{e.stem}{slides.DECK_SUFFIX}", "slides"),
                   link(f"notebooks/{e.stem}.ipynb", f"{e.stem}.ipynb"))

    def exercise_row(e: Entry) -> str:
        return row(link(f"exercises/{e.stem}.html", e.title), ("time", html.escape(e.time)),
                   link(f"exercises/{e.stem}.ipynb", f"{e.stem}.ipynb"))

    return INDEX.format(lectures="".join(map(lecture_row, lectures)),
                        exercises="".join(map(exercise_row, exercises)))


INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rectified: a course on ReLU and its relatives</title>
<style>
body {{ font: 17px/1.55 system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin: 1em 0 2em; }}
td, th {{ text-align: left; padding: 0.45em 0.6em; border-bottom: 1px solid #ddd; vertical-align: top; }}
a {{ color: #0b5cad; }} .failed {{ color: #c62828; font-size: 0.9em; }} .time {{ white-space: nowrap; }}
</style></head>
<body>
<h1>Rectified: a course on ReLU and its relatives</h1>
<p>Read the lecture notebooks in order; after each, do the matching exercise. Every page here was executed on
the course kernel; the sliders and other widgets need a running kernel: clone the course and run
<code>make lab</code> to play with them.</p>
<h2>The course map</h2>
<table><thead><tr><th>#</th><th>Notebook</th><th>Time</th><th>Slides</th><th>Download</th></tr></thead>
<tbody>{lectures}</tbody></table>
<h2>Exercises</h2>
<p>The student versions, as released: fetch, work, validate and submit them as notebook 00 explains.</p>
<table><thead><tr><th>Exercise</th><th>Time</th><th>Download</th></tr></thead>
<tbody>{exercises}</tbody></table>
</body></html>
"""


def written_by_us(out: Path) -> bool:
    """True when `out` is empty, was written by `build`, or holds only decks `course slides` wrote into its
    slides/ folder (the default place of both commands, so that they work in either order)."""
    if not out.exists() or (out / MARKER).exists():
        return True
    entries = list(out.iterdir())
    return all(e.name == "slides" and e.is_dir() and (e / slides.MARKER).exists() for e in entries)


def prepare(out: Path) -> None:
    """Empty the parts of `out` that `build` writes; refuse a non-empty folder that neither `build` nor
    `course slides` wrote."""
    if not written_by_us(out):
        raise SiteError(f"{out} is not empty and was not written by `course site`: choose another --out")
    for sub in ("notebooks", "slides", "exercises"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    for old in out.glob("*.html"):
        old.unlink()
    (out / MARKER).touch()


def build(out: Path | None = None, progress: Callable[[str], None] = lambda message: None) -> Site:
    """Write the whole site into `out` (default site/_build/), replacing what an earlier build wrote there;
    `progress` hears about each notebook as it is executed."""
    out = out or course_root().joinpath(*DEFAULT_OUT)
    prepare(out)
    rendering.copy_assets(out / "_static")
    lectures = lecture_pages(out, progress)
    index = out / "index.html"
    index.write_text(index_page(lectures, exercise_pages(out)), encoding="utf-8")
    return Site(index, {e.stem: e.failure for e in lectures if e.failure})
