# The two set-up commands: `make lab` (run the course) and `make test` (run every check).
# Both start with the same idempotent install step (tools/bootstrap.sh).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: lab test install lint clean
.DEFAULT_GOAL := lab

install:
	@PYTHON="$(PYTHON)" VENV="$(VENV)" bash tools/bootstrap.sh

lab: install
	$(BIN)/course lab

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
