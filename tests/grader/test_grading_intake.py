"""Intake: every student folder gets a notebook to grade or a clear status; nothing stops the others."""

import json
import os
import zipfile

import nbformat
import pytest

from course_lib.grading.grade.intake import IntakeError, extract_zip, find_submissions, safe_student_id
from tests.conftest import ROOT

A = "ex01_activations"
RELEASED = ROOT / "exercises" / A / f"{A}.ipynb"


def _submit(submitted, student, text=None, name=f"{A}.ipynb"):
    folder = submitted / student / A
    folder.mkdir(parents=True)
    (folder / name).write_text(RELEASED.read_text() if text is None else text)
    return folder


@pytest.fixture
def submitted(tmp_path):
    root = tmp_path / "submitted"
    root.mkdir()
    return root


def _by_student(submitted):
    return {s.student_id: s for s in find_submissions(submitted, A)}


def test_a_good_submission_is_read_as_a_notebook(submitted):
    _submit(submitted, "alice")
    alice = _by_student(submitted)["alice"]
    assert alice.status is None and alice.notebook.nbformat == 4 and alice.flags == ()


@pytest.mark.parametrize("text, reason", [
    ("", "is an empty file"),
    ("{not json", "is not a readable notebook"),
    (json.dumps({"cells": "nope"}), "is not a readable notebook"),
])
def test_unreadable_notebooks_are_invalid_with_a_reason_and_others_still_read(submitted, text, reason):
    _submit(submitted, "bad", text)
    _submit(submitted, "good")
    found = _by_student(submitted)
    assert found["bad"].status == "invalid" and reason in found["bad"].reason
    assert found["good"].status is None


def test_an_old_nbformat_3_notebook_is_upgraded_and_flagged(submitted):
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("1")])])
    _submit(submitted, "old", nbformat.writes(v3, version=3))
    old = _by_student(submitted)["old"]
    assert old.status is None and old.notebook.nbformat == 4 and old.flags == ("upgraded from nbformat 3",)


def test_a_single_renamed_notebook_is_graded_and_flagged(submitted):
    _submit(submitted, "bob", name="my answers.ipynb")
    bob = _by_student(submitted)["bob"]
    assert bob.status is None and bob.flags == (f"notebook named my answers.ipynb, expected {A}.ipynb",)


def test_two_wrongly_named_notebooks_are_invalid_and_a_missing_one_is_missing(submitted):
    folder = _submit(submitted, "carol", name="a.ipynb")
    (folder / "b.ipynb").write_text(RELEASED.read_text())
    (submitted / "dave" / A).mkdir(parents=True)
    (submitted / "erin").mkdir()
    found = _by_student(submitted)
    assert found["carol"].status == "invalid" and "2 notebooks and none named" in found["carol"].reason
    assert found["dave"].status == "missing" and found["erin"].status == "missing"


@pytest.mark.parametrize("student", ["has space", "-dash", ".hidden", "a..b"])
def test_an_unsafe_student_id_is_invalid(submitted, student):
    _submit(submitted, student)
    assert _by_student(submitted)[student].status == "invalid"
    assert "not a safe folder name" in _by_student(submitted)[student].reason


def test_safe_student_ids():
    assert all(map(safe_student_id, ["alice", "s12345", "a.b-c_d@uni"]))
    assert not any(map(safe_student_id, ["../x", "", "a/b", "x" * 65]))


def test_symlinked_notebook_or_folder_is_refused(submitted, tmp_path):
    outside = tmp_path / "outside.ipynb"
    outside.write_text(RELEASED.read_text())
    (submitted / "mallory" / A).mkdir(parents=True)
    os.symlink(outside, submitted / "mallory" / A / f"{A}.ipynb")
    os.symlink(tmp_path, submitted / "trudy")
    found = _by_student(submitted)
    assert found["mallory"].status == "missing"
    assert found["trudy"].status == "invalid" and "symbolic links" in found["trudy"].reason


def test_a_missing_submissions_folder_is_one_clear_error(tmp_path):
    with pytest.raises(IntakeError, match="no such folder of submissions"):
        find_submissions(tmp_path / "nope", A)


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return path


def test_a_zip_of_the_submitted_folder_is_unpacked_and_read(tmp_path):
    archive = _zip(tmp_path / "class.zip", {f"submitted/alice/{A}/{A}.ipynb": RELEASED.read_text()})
    root = extract_zip(archive, tmp_path / "out")
    assert [s.student_id for s in find_submissions(root, A)] == ["alice"]


@pytest.mark.parametrize("entry", [f"../evil/{A}/{A}.ipynb", f"/abs/{A}.ipynb", f"a/../../{A}.ipynb"])
def test_a_zip_with_paths_outside_its_root_is_refused_before_anything_is_written(tmp_path, entry):
    archive = _zip(tmp_path / "evil.zip", {entry: "{}", f"alice/{A}/{A}.ipynb": RELEASED.read_text()})
    with pytest.raises(IntakeError, match="points outside its root"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out").exists()


def test_a_zip_holding_a_symbolic_link_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"alice/{A}/{A}.ipynb", RELEASED.read_text())
        link = zipfile.ZipInfo(f"mallory/{A}/{A}.ipynb")
        link.external_attr = (0o120777 << 16)  # a symlink entry, as `zip --symlinks` writes it
        zf.writestr(link, "/etc/shadow")
    with pytest.raises(IntakeError, match="is a symbolic link"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_notebook_over_the_size_limit_is_invalid_and_the_others_are_read(submitted, monkeypatch):
    import course_lib.grading.grade.intake as intake

    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 2**20)
    (submitted / "big" / A).mkdir(parents=True)
    nb = json.loads(RELEASED.read_text())
    nb["cells"][0]["source"] = "x" * (2 * 2**20)
    (submitted / "big" / A / f"{A}.ipynb").write_text(json.dumps(nb))
    (submitted / "alice" / A).mkdir(parents=True)
    (submitted / "alice" / A / f"{A}.ipynb").write_text(RELEASED.read_text())
    found = {s.student_id: s for s in find_submissions(submitted, A)}
    assert found["big"].notebook is None and "over the 1 MB limit" in found["big"].reason
    assert found["alice"].notebook is not None
