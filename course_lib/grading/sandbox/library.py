"""The sandbox library: the copy of course_lib a graded submission sees.

It holds the teaching modules and the kernel side of grading (course_lib.grading.kernel, the exercises' check
modules, and the shared `protocol` and `plain` modules): what test cells need to call the student's code.
It does not hold the host side (judges, references used to decide, labels, the grading run itself), and each
name an assignment asks students to write (its `WRITTEN`, e.g. course_lib.activations.relu for ex01) is cut
out of its module, code and source. Looking one up raises `ReferenceRemoved`, a one-line ImportError, and
tells the host, which flags the submission: the course's own answer never counts as the student's.
"""

import ast
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import course_lib
from course_lib.data import cache_dir

PACKAGE_DIR = Path(course_lib.__file__).resolve().parent
# What a kernel does not need: the command line, site and slides builders, benchmarks, `course report` (host
# side: it reads the gradebook). Inside grading only the kernel side is copied (KERNEL_PARTS).
NOT_COPIED = ("cli.py", "site.py", "slides.py", "rendering.py", "launch.py", "benches.py", "report")
KERNEL_PARTS = ("__init__.py", "protocol.py", "plain.py", "kernel", "checks")

STUB = '''

class ReferenceRemoved(ImportError):
    """A name the assignment asks students to write, looked up while the work is graded."""


def __getattr__(name):
    if name in _REMOVED:
        from course_lib.grading.kernel import channel

        channel.used_reference(f"{__name__}.{name}")
        raise ReferenceRemoved(f"{__name__}.{name} is the course's own answer to this exercise and is not "
                               "available when your work is graded: write your own")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "__all__" in globals():  # `from module import *` takes what is left, as before the module declared __all__
    __all__ = [n for n in __all__ if n not in _REMOVED]
'''


def _cut(source: str, names: Sequence[str], where: str) -> str:
    """`source` without the top-level definitions (def, class, assignment) of `names`, plus the stub that
    refuses them."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = []
    for node in tree.body:
        if set(_defined(node)) & set(names):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            spans.append((start - 1, node.end_lineno))
    missing = set(names) - {n for node in tree.body for n in _defined(node)}
    if missing:
        raise ValueError(f"{where} defines no {sorted(missing)[0]} to remove")
    for start, end in sorted(spans, reverse=True):
        del lines[start:end]
    return "".join(lines) + f"\n_REMOVED = {sorted(names)!r}\n" + STUB


def _defined(node) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets = getattr(node, "targets", [getattr(node, "target", None)])
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _ignore(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).resolve()
    ignored = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
    if here == PACKAGE_DIR:
        ignored |= set(NOT_COPIED)
    if here == PACKAGE_DIR / "grading":
        ignored |= {n for n in names if n not in KERNEL_PARTS}
    return ignored


def library_dir() -> Path:
    """Where sandbox libraries are built: host-only, never inside a folder a sandbox is shown."""
    return Path(os.environ.get("RECTIFIED_LIBRARY_DIR") or cache_dir().parent / "rectified-sandbox-libraries")


def fingerprint(removed: Mapping[str, Sequence[str]]) -> str:
    """Identifies a sandbox library: the package's sources and the names removed."""
    digest = hashlib.sha256(repr(sorted((m, sorted(n)) for m, n in removed.items())).encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build(removed: Mapping[str, Sequence[str]], into: Path) -> Path:
    """Write the sandbox library into `into`/course_lib-<fingerprint> (reused when it exists); its path.
    `removed`: module name (e.g. "course_lib.activations") -> names to cut out of it."""
    dest = into / f"course_lib-{fingerprint(removed)}"
    if dest.is_dir():
        return dest
    into.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=into)) / "course_lib"
    shutil.copytree(PACKAGE_DIR, scratch, ignore=_ignore)
    for module, names in removed.items():
        parts = module.split(".")
        if parts[0] != "course_lib":
            raise ValueError(f"can only remove names from course_lib, not from {module}")
        path = scratch.joinpath(*parts[1:]).with_suffix(".py")
        path.write_text(_cut(path.read_text(), names, module))
    for path in [scratch, *scratch.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        scratch.rename(dest)
    except OSError:  # another grading thread or process built the same library meanwhile
        if not dest.is_dir():
            raise
    shutil.rmtree(scratch.parent, ignore_errors=True)
    return dest
