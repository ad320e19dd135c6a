# Neural Networks, an executable course book. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout 900
# students on Linux and Windows: TORCH_INDEX=https://download.pytorch.org/whl/cpu installs
# torch's CPU-only build first (a plain install pulls the multi-GB CUDA build; see README)
TORCH_INDEX ?=
# pytest-xdist workers: on 2 cores, the third keeps a core busy while a test waits
JOBS   ?= 3

.PHONY: help install test unit nbval lab execute execute-check student site site-solutions bench data clean quarto-check test-site grade

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "Python 3.11 is needed (found: $(PYTHON)). Install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import matplotlib.pyplot"   # build the font cache before any notebook runs
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned packages and the book's helpers

test: $(STAMP)   ## unit tests + strict nbval of every chapter, in parallel
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope $(NBVAL) tests chapters

unit: $(STAMP)   ## only the unit tests (quick, self-contained: marker unit)
	$(BIN)/python -m pytest -n 2 --dist loadscope -m unit tests   # no waits to fill: one worker a core

nbval: $(STAMP)  ## only the strict nbval run of the chapters
	$(BIN)/python -m pytest -n $(JOBS) --dist loadscope $(NBVAL) chapters

lab: $(STAMP)    ## open the chapters in JupyterLab
	$(BIN)/jupyter lab chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

execute: $(STAMP) ## re-run every notebook in place (after a deliberate change)
	NNBOOK_CACHE_DIR=off $(BIN)/python -m nnbook.execute chapters/*.ipynb

execute-check: $(STAMP) ## re-run every notebook in memory; fail if anything but timings would change
	NNBOOK_CACHE_DIR=off $(BIN)/python -m nnbook.execute --check chapters/*.ipynb

student: $(STAMP) ## write the student notebooks (no solutions, no outputs) and the student kit zip to _student/
	$(BIN)/python -m nnbook.student chapters _student/chapters
	$(BIN)/python -m nnbook.kit _student/chapters _student/neural-networks-student-kit.zip

GRADES ?= _grades
grade: $(STAMP)  ## grade a class: make grade SUBMISSIONS=folder [GRADES=_grades] (runs untrusted code: README)
	@test -d "$(SUBMISSIONS)" || { echo "Give the folder of submitted notebooks: make grade SUBMISSIONS=path/to/folder"; exit 1; }
	$(BIN)/python -m nnbook.grade "$(SUBMISSIONS)" --out "$(GRADES)" $(GRADE_ARGS)

data: $(STAMP)   ## regenerate the CSV files in data/
	$(BIN)/python -m nnbook.data data

bench: $(STAMP)  ## print the benchmark figures
	$(BIN)/python tests/bench.py
	$(BIN)/python tests/bench_grade.py

QUARTO_HELP := Install Quarto 1.7 or newer (course machines: bash ../shared/tools/quarto/install.sh; elsewhere https://quarto.org/docs/get-started/ or pip install -r requirements-site.txt), then run this target again.

quarto-check:
	@v=$$(quarto --version 2>/dev/null) || { echo "quarto is not on PATH. $(QUARTO_HELP)"; exit 1; }; \
	printf '1.7\n%s\n' "$$v" | sort -V -C || { echo "quarto $$v is older than 1.7. $(QUARTO_HELP)"; exit 1; }

site: quarto-check student ## render the HTML book with Quarto; SOLUTIONS=1 shows the solutions
	QUARTO_PYTHON=$(abspath $(BIN)/python) quarto render $(if $(SOLUTIONS),--profile solutions)

site-solutions:  ## render the book with the solutions profile (same as make site SOLUTIONS=1)
	$(MAKE) site SOLUTIONS=1

SITE_TEST_STAMP := $(VENV)/.site-test-installed
$(SITE_TEST_STAMP): $(STAMP) requirements-site-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-site-test.txt
	touch $@

test-site: quarto-check $(SITE_TEST_STAMP) ## maintainers: render both editions, check their HTML and every page in Chromium
	$(BIN)/python -m pytest --durations=5 tests_site

clean:           ## remove generated files (not the virtual environment)
	rm -rf _output chapters/_output _student _book _book-solutions .quarto
