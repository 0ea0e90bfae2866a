"""The teaching library's declared surface: each teaching module's `__all__` lists exactly the names the course
uses. A notebook or exercise that imports an undeclared name fails here, and so does a declared name that no
notebook, exercise or kernel-side check uses (unless `PUBLIC_UNUSED` says why it stays public).

Uses are read statically: every code cell of notebooks/*.ipynb and of the nbgrader sources solutions/*/*.ipynb
(IPython syntax translated to Python first), and the kernel side's .py files, are parsed with `ast`. Three forms
are resolved: `from course_lib.x import a, b`; `import course_lib.x as y` (or `import course_lib`) followed by
`y.a`; and `from course_lib import x` followed by `x.a`. A module alias that is later rebound at top level
(`data = digits()`) stops counting from there on."""

import ast
import importlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "course_lib"

# Top-level modules that are not part of the teaching library: the course tooling (command line, site, slides,
# launcher, benchmarks, paths, errors). The grading and report packages are not top-level modules either.
NOT_TEACHING = {"__init__", "cli", "site", "slides", "rendering", "launch", "benches", "paths", "errors"}
TEACHING = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in NOT_TEACHING)

# Kernel-side code (runs in the student's kernel or the sandbox) may use any public teaching name too.
KERNEL_SIDE = [PACKAGE / "grading" / "kernel", PACKAGE / "grading" / "checks", PACKAGE / "grading" / "exercises"]

# (module, name) -> why it is public although no notebook, exercise or kernel-side check uses it by name.
PUBLIC_UNUSED: dict[tuple[str, str], str] = {
    ("activations", "relu_forward"): "ex02 has students write it; ex02's judges grade theirs against this one",
    ("activations", "relu_backward"): "ex02 has students write it; ex02's judges grade theirs against this one",
}

Use = tuple[str, str, str]  # (module without "course_lib.", name, where)


def _cell_sources(notebook: Path) -> list[str]:
    """The code cells of a notebook, translated from IPython syntax (magics, `!` lines) to Python."""
    cells = json.loads(notebook.read_text())["cells"]
    translate = TransformerManager().transform_cell
    return [translate("".join(c["source"])) for c in cells if c["cell_type"] == "code"]


def _top_level_stores(statement: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the module namespace (not inside functions, classes, lambdas)."""
    stored, stack = set(), [statement]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stored.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stored.add(node.name)  # the body is another scope
            continue
        if not isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            stack.extend(ast.iter_child_nodes(node))
    return stored


def _dotted(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def uses_in(sources: list[str], where: str) -> list[Use]:
    """Every (module, name) of course_lib the code uses, in order; `sources` share one namespace (a notebook's
    cells, or one .py file). `module` is the dotted path below course_lib ("nn", "grading.kernel")."""
    found: list[Use] = []
    aliases: dict[str, list[str]] = {}  # local name -> the module it stands for, ["course_lib", "nn"]
    for source in sources:
        for statement in ast.parse(source).body:
            rebound = _top_level_stores(statement)
            for node in ast.walk(statement):
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    for alias in node.names:
                        local = alias.asname or alias.name
                        rebound.add(local)
                        if node.module == "course_lib":  # from course_lib import nn
                            aliases[local] = ["course_lib", alias.name]
                            rebound.discard(local)
                        elif node.module.startswith("course_lib."):
                            found.append((node.module.removeprefix("course_lib."), alias.name, where))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        # `import course_lib.nn` binds "course_lib"; `import course_lib.nn as n` binds "n".
                        local = alias.asname or alias.name.split(".")[0]
                        if alias.name.split(".")[0] == "course_lib":
                            aliases[local] = alias.name.split(".") if alias.asname else ["course_lib"]
                        else:
                            rebound.add(local)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                    parts = _dotted(node)
                    if parts and parts[0] in aliases:
                        full = aliases[parts[0]] + parts[1:]
                        if len(full) == 3:  # course_lib.<module>.<name>; deeper chains reach it as a sub-node
                            found.append((full[1], full[2], where))
                        elif len(full) > 3 and full[1] in ("grading", "report"):
                            found.append((".".join(full[1:-1]), full[-1], where))
            for name in rebound:
                aliases.pop(name, None)
    return found


MENTION = re.compile(r"\bcourse_lib\.(\w+)\.(\w+)\b")  # `course_lib.nn.mlp` in a notebook's text


def mentions_in(notebook: Path) -> list[Use]:
    """Names a notebook's markdown points students to by their full path (`course_lib.regions.relu_patterns`)."""
    cells = json.loads(notebook.read_text())["cells"]
    return [(m[1], m[2], notebook.name) for c in cells if c["cell_type"] == "markdown"
            for m in MENTION.finditer("".join(c["source"]))]


def _notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _kernel_files() -> list[Path]:
    return [f for d in KERNEL_SIDE if d.is_dir() for f in sorted(d.rglob("*.py"))]


def course_uses() -> list[Use]:
    """What the lecture notebooks and the exercises (their nbgrader sources) use of course_lib."""
    return [u for nb in _notebooks() for u in uses_in(_cell_sources(nb), nb.name) + mentions_in(nb)]


def kernel_uses() -> list[Use]:
    return [u for f in _kernel_files() for u in uses_in([f.read_text()], str(f.relative_to(ROOT)))]


def declared(module: str) -> list[str]:
    return list(importlib.import_module(f"course_lib.{module}").__all__)


def test_the_scan_finds_the_notebooks_and_the_kernel_side():
    assert len(_notebooks()) >= 13 and len(_kernel_files()) >= 10
    assert len({(m, n) for m, n, _ in course_uses() if m in TEACHING}) >= 60


def test_uses_are_read_in_each_form():
    source = ["from course_lib.nn import mlp as build\nimport course_lib.train as t\nfrom course_lib import data\n"
              "import course_lib\n"
              "x = data.moons(); t.fit(build(), x); course_lib.stats.describe(1)\n"
              "data = x\ndata.spirals\n",
              "from course_lib import data as d\nd.circles\n"]  # two cells
    assert {(m, n) for m, n, _ in uses_in(source, "here")} == {  # data.spirals: `data` is no module by then
        ("nn", "mlp"), ("data", "moons"), ("train", "fit"), ("stats", "describe"), ("data", "circles")}


@pytest.mark.parametrize("module", TEACHING)
def test_each_teaching_module_declares_its_surface(module):
    names = declared(module)
    assert names == sorted(set(names), key=names.index), f"course_lib.{module}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(importlib.import_module(f"course_lib.{module}"), n)]
    assert not missing, f"course_lib.{module}.__all__ names what the module does not define: {missing}"


def test_notebooks_and_exercises_use_only_declared_names():
    undeclared = defaultdict(set)
    for module, name, where in course_uses():
        if module.startswith(("grading.", "report")) or module == "grading":
            continue  # the checks exercises call are the grader's, not the teaching library's
        if module not in TEACHING or name not in declared(module):
            undeclared[f"course_lib.{module}.{name}"].add(where)
    assert not undeclared, f"used by the course but not in its module's __all__: {dict(undeclared)}"


def test_the_kernel_side_uses_only_declared_names():
    undeclared = {f"course_lib.{m}.{n}": w for m, n, w in kernel_uses()
                  if m in TEACHING and n not in declared(m)}
    assert not undeclared, f"used by the kernel-side checks but not in its module's __all__: {undeclared}"


def test_every_declared_name_is_used_or_says_why_not():
    used = {(m, n) for m, n, _ in course_uses() + kernel_uses()}
    unused = [f"course_lib.{m}.{n}" for m in TEACHING for n in declared(m)
              if (m, n) not in used and (m, n) not in PUBLIC_UNUSED]
    assert not unused, f"in __all__ but used by no notebook, exercise or kernel-side check: {unused}"
    still_listed = [k for k in PUBLIC_UNUSED if k in used or k[1] not in declared(k[0])]
    assert not still_listed, f"PUBLIC_UNUSED lists names that are used or not public: {still_listed}"


TAUGHT = re.compile(r"Taught in notebook (\d\d) \(.*?\)(?:; also used in (.*?))?\.$|Used in exercises? (.*?)\.$")


def _surface_lines(module: str) -> dict[str, str]:
    """Public function or class -> its docstring's last line (where it says which notebook teaches it)."""
    mod = importlib.import_module(f"course_lib.{module}")
    return {n: (getattr(mod, n).__doc__ or "").strip().splitlines()[-1] for n in declared(module)
            if callable(getattr(mod, n)) and getattr(getattr(mod, n), "__module__", None) == mod.__name__}


@pytest.mark.parametrize("module", TEACHING)
def test_each_public_helper_names_notebooks_that_really_use_it(module):
    """'Taught in notebook 03 (dead neurons); also used in notebook 05 and exercise ex03.': a helper the course
    uses says where, and every notebook and exercise named there uses it."""
    users = defaultdict(set)
    for m, n, where in course_uses():
        users[m, n].add(where[:4] if where.startswith("ex") else where[:2])
    wrong = {}
    for name, line in _surface_lines(module).items():
        match = TAUGHT.search(line)
        if not users[module, name]:
            continue  # public for the kernel side's checks (or PUBLIC_UNUSED): no notebook to name
        if not match:
            wrong[name] = f"no 'Taught in notebook NN (topic).' or 'Used in exercise exNN.' line: {line!r}"
            continue
        named = set(re.findall(r"\bex\d\d\b|\b\d\d\b", line))
        if not named <= users[module, name]:
            wrong[name] = f"{line!r} names {sorted(named - users[module, name])}, which do not use it"
    assert not wrong, wrong
