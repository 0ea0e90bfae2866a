"""`course slides`: reveal.js decks of the lecture notebooks that work offline.

Each cell's `metadata.slideshow.slide_type` (slide, subslide, fragment, skip, notes) decides where slides
begin; nbconvert's reveal template lays them out. The notebook is executed first, so the deck shows its
figures and printed numbers. reveal.js and MathJax are copied from installed packages into `_static/`
beside the decks (rendering.copy_assets): the folder opens from a USB stick, with no network.
Press S in a deck for the speaker view (cells marked `notes`).
"""

from collections.abc import Callable
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import SlidesExporter

from course_lib import rendering
from course_lib.errors import CourseError
from course_lib.paths import course_root, notebooks

DEFAULT_OUT = ("site", "_build", "slides")
TEMPLATE = "rectified_slides.html.j2"
DECK_SUFFIX = ".slides.html"
MARKER = ".rectified-slides"  # marks a folder `build` wrote: `course site` may replace it (site.prepare)

# nbconvert's reveal template, with reveal.js started by plain script tags instead of require.js (a CDN).
SLIDES_TEMPLATE = "{%- extends 'index.html.j2' -%}" + rendering.OFFLINE_BLOCKS + """
{% block footer_js %}
<style>
.reveal .slides > section, .reveal .slides > section > section { height: 100%; overflow-y: auto; }
.rectified-widget { border-left: 4px solid #e69f00; padding: 0.3em 0.8em; background: #fff7e6; }
</style>
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true, progress: true, history: true, hash: true, center: false,
  transition: "{{ resources.reveal.transition }}", slideNumber: "c/t",
  width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }},
  plugins: [RevealNotes]
});
Reveal.on("slidechanged", function (event) {
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Queue(["Rerender", MathJax.Hub, event.currentSlide]); }
});
</script>
{% endblock footer_js %}
"""


class UnknownNotebook(CourseError, ValueError):
    """A notebook name that is not in notebooks/; the message lists the ones that are."""


def find_notebook(name: str, root: Path | None = None) -> Path:
    """The lecture notebook called `name`, with or without .ipynb or a notebooks/ prefix."""
    found = notebooks(root)
    stem = Path(name).name.removesuffix(".ipynb")
    for path in found:
        if path.stem == stem:
            return path
    names = ", ".join(p.stem for p in found) or "none"
    raise UnknownNotebook(f"no notebook {name!r} in notebooks/; the notebooks are: {names}")


def exporter(static_prefix: str) -> SlidesExporter:
    """nbconvert's slides exporter with the offline template; `static_prefix` is _static/ seen from the deck."""
    return SlidesExporter(
        extra_loaders=[DictLoader({TEMPLATE: SLIDES_TEMPLATE})], template_file=TEMPLATE,
        reveal_url_prefix=f"{static_prefix}/revealjs", reveal_theme="white", reveal_transition="slide",
        reveal_width="1280", reveal_height="800", mathjax_url=rendering.mathjax_url(static_prefix),
    )


def render(nb: nbformat.NotebookNode, dest: Path, static_prefix: str = "_static") -> Path:
    """Write the deck of an (executed) notebook to `dest`, an .html file; `_static` must hold the assets."""
    nb = rendering.retarget_links(rendering.replace_widgets(nb), [p.stem for p in notebooks()], DECK_SUFFIX)
    body, _ = exporter(static_prefix).from_notebook_node(nb)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(body, encoding="utf-8")
    return dest


def deck_name(path: Path) -> str:
    """01_activation_functions.ipynb -> 01_activation_functions.slides.html"""
    return path.stem + DECK_SUFFIX


def build(names: list[str], out: Path | None = None,
          progress: Callable[[str], None] = lambda message: None) -> list[tuple[Path, str | None]]:
    """Execute and render each named notebook (all when `names` is empty) into `out` (default site/_build/slides/),
    telling `progress` about each deck. Returns (deck, failure) pairs: a notebook that fails to run still gets
    its deck, up to the failing cell."""
    out = out or course_root().joinpath(*DEFAULT_OUT)
    paths = [find_notebook(n) for n in names] or notebooks()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    rendering.copy_assets(out / "_static")
    decks = []
    for path in paths:
        run = rendering.execute(path)
        deck = render(run.nb, out / deck_name(path))
        progress(f"wrote {deck}" + (f" (failed to execute: {run.failure})" if run.failure else ""))
        decks.append((deck, run.failure))
    return decks
