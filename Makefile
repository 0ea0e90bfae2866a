# The set-up commands: `make lab` (run the course) and `make test` (run every check); `make test-fast` for
# maintainers between changes. Each starts with the same idempotent install step (tools/bootstrap.sh), which
# installs the extras its role needs (pyproject.toml): lab the course only, test everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extras for `make install`, comma-separated: instructor (Dask, PostgreSQL gradebook), lecturer (offline
# slides and site), maintainer (all of them, plus tests, browser and lint). Empty: the student set.
EXTRAS ?=

.PHONY: lab test test-fast install maintainer-install lint system-packages clean
.NOTPARALLEL:  # the prerequisites run in the order written
.DEFAULT_GOAL := lab

install:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" EXTRAS="$(EXTRAS)" bash tools/bootstrap.sh

lab:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" EXTRAS="$(EXTRAS)" bash tools/bootstrap.sh
	$(BIN)/course lab

maintainer-install:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" EXTRAS="maintainer" bash tools/bootstrap.sh

# Installs bubblewrap, chromium and postgresql when it can (root with apt-get), else says in one line what to
# install; the tests that need a missing one are then skipped and listed at the end (CI=true skips none).
system-packages:
	@bash tools/system-packages.sh

lint: maintainer-install
	$(BIN)/ruff check .

# Everything: unit tests, every notebook executed, servers, grading in the sandbox, PostgreSQL, Dask, browser.
test: maintainer-install system-packages lint
	$(BIN)/python -m pytest

# The tests not marked slow (no notebook execution, server, PostgreSQL or browser; two quick benchmarks grade in
# the sandbox): a few minutes.
test-fast: maintainer-install lint
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
