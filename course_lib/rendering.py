"""Notebooks to offline HTML: run on the course kernel, then render with local scripts, styles and fonts only.

Shared by `course slides` (slides.py) and `course site` (site.py). nbconvert's templates load MathJax,
require.js, jQuery, mermaid and the widget manager from CDNs; the templates here override those blocks, and
`copy_assets` puts the two libraries a page needs next to it: reveal.js 5 (shipped by the sphinx-revealjs
package) and MathJax 2.7 (shipped by jupyter-server-mathjax). A page therefore opens from the file system.
Interactive widgets need a live kernel: their output is replaced by a note saying where to play them.
"""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellControlSignal, DeadKernelError

from course_lib.live import HEADLESS_ENV, WIDGET_NOTE  # noqa: F401 (WIDGET_NOTE: rendering.WIDGET_NOTE for callers)

KERNEL_NAME = "rectified"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# MathJax 2 as the classic Notebook configured it for this font set: STIX-Web web fonts only.
MATHJAX = """
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}},
  displayAlign: "center", messageStyle: "none"
});
</script>
<script src="{{ resources.mathjax_url }}"></script>
"""

# Blocks of nbconvert's lab and reveal templates that would load something from the network.
OFFLINE_BLOCKS = """
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block html_head_js_mathjax %}""" + MATHJAX + """{% endblock html_head_js_mathjax %}
"""


@dataclass
class Executed:
    """A notebook after running it: `failure` names the cell that stopped it, or is None."""

    nb: nbformat.NotebookNode
    failure: str | None = None


def package_folder(package: str, *parts: str) -> Path:
    """A folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package} is not installed: run `make install`")
    return Path(spec.submodule_search_locations[0], *parts)


# (distribution, package, folder inside it) of each library the pages load.
ASSETS = {"revealjs": ("sphinx-revealjs", "sphinx_revealjs", "_static/revealjs"),
          "mathjax": ("jupyter-server-mathjax", "jupyter_server_mathjax", "static")}
# Source maps, ES-module twins of the scripts, and MathJax's translations (its messages stay in English).
IGNORED = shutil.ignore_patterns("*.map", "*.esm.js", "localization")


def copy_assets(static: Path) -> Path:
    """Copy reveal.js and MathJax into `static`, unless the same package versions are already there."""
    for name, (distribution, package, folder) in ASSETS.items():
        target, wanted = static / name, f"{distribution} {importlib.metadata.version(distribution)}\n"
        stamp = target / ".copied-from"
        if not stamp.exists() or stamp.read_text() != wanted:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(package_folder(package, folder), target, ignore=IGNORED)
            stamp.write_text(wanted)
    return static


def mathjax_url(static_prefix: str) -> str:
    """The MathJax script, relative to the page, with the configuration file the package ships."""
    return f"{static_prefix}/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def kernel_env() -> dict[str, str]:
    """This process's environment without MPLBACKEND (a headless backend, as tests set, would hide every figure),
    with RECTIFIED_HEADLESS set: `course_lib.live.interact` then shows a note and a static figure, not a widget."""
    return {**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, HEADLESS_ENV: "1"}


def execute(path: Path, timeout: int = 300) -> Executed:
    """Run a notebook top to bottom on the course kernel, in its own folder; on failure keep what ran.
    `timeout` is per cell, in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=timeout,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        # The kernel's own log (a warning about TCP on every start) would garble the command's output.
        client.execute(env=kernel_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (CellControlSignal, DeadKernelError, TimeoutError) as err:
        return Executed(nb, failure_message(nb, err))
    return Executed(nb)


def failure_message(nb: nbformat.NotebookNode, err: Exception) -> str:
    """One line naming the cell that stopped the run (its position among all cells, from 1, and its prompt
    number) and why."""
    for index, cell in enumerate(nb.cells, start=1):
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            why = " ".join(f"{errors[0].ename}: {errors[0].evalue}".split())
            return f"cell {index} (In [{cell.execution_count}]) raised {why[:300]}"
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"the run stopped ({type(err).__name__}): {first_line[:300]}"


def replace_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Swap every widget view for a note (a static page cannot run it); drop the saved widget state."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": WIDGET_NOTE})
                        if WIDGET_MIME in o.get("data", {}) else o for o in cell.outputs]
    return nb


def retarget_links(nb: nbformat.NotebookNode, stems: list[str], suffix: str) -> nbformat.NotebookNode:
    """Point Markdown links between lecture notebooks (`](01_x.ipynb)`) at their rendered pages (`01_x` + suffix)."""
    pattern = re.compile(r"\]\((" + "|".join(map(re.escape, stems)) + r")\.ipynb(#[^)]*)?\)") if stems else None
    for cell in nb.cells:
        if pattern and cell.cell_type == "markdown":
            cell.source = pattern.sub(lambda m: f"]({m[1]}{suffix}{m[2] or ''})", cell.source)
    return nb
