# Neural Networks, an executable course book. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout 900
JOBS   ?= 2

.PHONY: help install test unit nbval lab execute execute-check student site site-solutions bench data clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "Python 3.11 is needed (found: $(PYTHON)). Install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import matplotlib.pyplot"   # build the font cache before any notebook runs
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned packages and the book's helpers

test: $(STAMP)   ## unit tests + strict nbval of every chapter, in parallel
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope $(NBVAL) tests chapters

unit: $(STAMP)   ## only the unit tests (fast)
	$(BIN)/python -m pytest -n $(JOBS) tests

nbval: $(STAMP)  ## only the strict nbval run of the chapters
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope $(NBVAL) chapters

lab: $(STAMP)    ## open the chapters in JupyterLab
	$(BIN)/jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

execute: $(STAMP) ## re-run every notebook in place (after a deliberate change)
	$(BIN)/python scripts/execute_notebooks.py chapters/*.ipynb

execute-check: $(STAMP) ## re-run every notebook in memory; fail if anything but timings would change
	$(BIN)/python scripts/execute_notebooks.py --check chapters/*.ipynb

student: $(STAMP) ## write the student notebooks (no solutions, no outputs) to _student/
	$(BIN)/python scripts/make_student.py chapters _student/chapters

data: $(STAMP)   ## regenerate the CSV files in data/
	$(BIN)/python scripts/make_data.py data

bench: $(STAMP)  ## print the benchmark figures
	$(BIN)/python tests/bench.py

QUARTO_MISSING := quarto is not on PATH. Install Quarto 1.7 or newer from https://quarto.org/docs/get-started/ (or pip install -r requirements-site.txt where quarto.org is reachable), then run this target again.

site: student    ## render the HTML book with Quarto; SOLUTIONS=1 shows the solutions
	@command -v quarto >/dev/null || { echo "$(QUARTO_MISSING)"; exit 1; }
	quarto render $(if $(SOLUTIONS),--profile solutions)

site-solutions:  ## render the book with the solutions profile (same as make site SOLUTIONS=1)
	$(MAKE) site SOLUTIONS=1

clean:           ## remove generated files (not the virtual environment)
	rm -rf _output _student _book _book-solutions .quarto
