# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs the pinned stack.
# `make docs` builds the documentation site into site/ (open site/index.html).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test install serve docs clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip<26" 2>/dev/null || true
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(PY) run_recbole_paragon.py --model=ParagonSASRec --dataset=ml-100k

test: $(STAMP)
	$(PY) -m pytest -q tests

serve: $(STAMP)   # the demo's bundle over HTTP: console at http://127.0.0.1:8000/
	$(PY) run_recbole_paragon.py --stage=serve

docs: $(DOCS_STAMP)   # warnings are errors; then no page may load anything from another host
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet
	$(PY) docs/check_offline.py site

clean:
	rm -rf $(VENV) saved log log_tensorboard site
