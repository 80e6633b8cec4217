# The README's two commands: `make demo` (quickstart end to end) and `make test`.
# Both create or reuse .venv. torch is installed first and on its own so that pip never
# swaps in another build: TORCH_SPEC=torch==2.13.0 is the CPU wheel on the reference machines;
# for a CUDA build use e.g. `make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" demo`.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.simfl-installed

.PHONY: setup demo test lint bench docs clean-cache

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/simfl run scenarios/quickstart.toml

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# The documentation site in site/ (open site/index.html): generated pages first, then a strict
# build, so a broken link or a stale page fails.
docs: $(STAMP)
	$(BIN)/python -m simfl.manual
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	$(BIN)/simfl bench w1

clean-cache:
	rm -rf .cache/simfl
