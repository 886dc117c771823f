# Two commands on a fresh machine: `make run` (the app on the bundled digits) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: run test lint bench search clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) -e '.[dev,sweep]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m streamlit run app.py

test: $(VENV)/.installed-dev
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .

search: $(VENV)/.installed
	$(PY) -m nas_engine search --preset classroom

bench: $(VENV)/.installed
	$(PY) benchmarks/search_step.py

clean:
	rm -rf $(VENV) runs .pytest_cache
