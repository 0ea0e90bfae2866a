"""The set-up promises: pins agree, the bootstrap refuses bad Pythons clearly and is idempotent."""

import os
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement

from tests.conftest import ROOT


def _pyproject_requirements(extra: str | None = None) -> dict[str, str]:
    """The student set (pyproject.toml's dependencies), or one extra's own packages."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["optional-dependencies"][extra] if extra else project["dependencies"]
    reqs = [Requirement(s) for s in specs]
    return {r.name.lower(): str(r.specifier) for r in reqs if r.name != "rectified"}


def _environment_yml_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    reqs = [Requirement(s) for s in pip_section if not s.startswith("-")]
    return {r.name.lower(): str(r.specifier) for r in reqs}


def test_environment_yml_and_pyproject_list_the_same_packages_and_pins():
    assert _environment_yml_requirements() == _pyproject_requirements()


def test_the_student_set_holds_no_instructor_lecturer_or_maintainer_package():
    """`make lab` installs the dependencies only: grading at scale, offline slides and the tests are extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(project["optional-dependencies"]) == {"instructor", "lecturer", "maintainer"}
    student = set(_pyproject_requirements())
    for extra in ("instructor", "lecturer", "maintainer"):
        assert not student & set(_pyproject_requirements(extra)), extra
    for package in ("dask", "distributed", "psycopg", "sphinx-revealjs", "pytest", "playwright", "ruff"):
        assert package not in student
    assert "rectified[instructor,lecturer]" in project["optional-dependencies"]["maintainer"]
    assert "EXTRAS=instructor" in (ROOT / "environment.yml").read_text()


def test_torch_is_pinned_to_the_cpu_build_version_everywhere():
    assert _pyproject_requirements()["torch"] == "==2.13.0"
    assert _environment_yml_requirements()["torch"] == "==2.13.0"


def test_nbgrader_and_jupyterlab_pins_are_compatible_with_each_other():
    pins = _pyproject_requirements()
    assert pins["nbgrader"] == "==0.9.6"
    assert "4.6.0" in Requirement("jupyterlab" + pins["jupyterlab"]).specifier
    assert "5.0.0" not in Requirement("jupyterlab" + pins["jupyterlab"]).specifier


def _bootstrap(tmp_path, python: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=python, VENV=str(tmp_path / "venv"))
    return subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], env=env, capture_output=True, text=True)


def test_bootstrap_names_what_is_needed_when_python_is_missing(tmp_path):
    result = _bootstrap(tmp_path, str(tmp_path / "no-such-python3"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "needs Python 3.11-3.13" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_bootstrap_refuses_a_too_old_python_in_one_line(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text('#!/bin/sh\ncase "$2" in *platform*) echo 3.8.10;; *) exit 1;; esac\n')
    fake.chmod(0o755)
    result = _bootstrap(tmp_path, str(fake))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: Rectified needs Python 3.11-3.13, but '{fake}' is 3.8.10; "
        "run: make PYTHON=/path/to/python3.11 ..."
    )


def test_bootstrap_run_again_on_an_installed_env_does_nothing():
    """`make test` has just installed the env this suite runs in (.venv, or a conda env); a rerun is a no-op."""
    result = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], capture_output=True, text=True,
                            env=dict(os.environ, PYTHON=sys.executable, VENV=sys.prefix))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_bootstrap_rebuilds_a_venv_left_broken_by_an_interrupted_run(tmp_path):
    broken = tmp_path / "venv"
    (broken / "bin").mkdir(parents=True)
    (broken / "bin" / "python").write_text("not a python")
    # No package index: the install step after the rebuild fails fast, which is all this test needs.
    env = dict(os.environ, PYTHON=sys.executable, VENV=str(broken), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    result = subprocess.run(["bash", str(ROOT / "tools" / "bootstrap.sh")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert "Rebuilding the incomplete environment" in result.stdout
    assert (broken / "bin" / "python").is_symlink()
    assert not (broken / ".rectified-install-stamp").exists()
