# Set-up and tests from zero: `make lab` opens the tour, `make test` runs every test.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
# The PyTorch build this project is tested with; any torch>=2.2 works (see pyproject.toml).
TORCH   ?= torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.installed
export CNNVIS_CACHE ?= $(CURDIR)/.cache

.PHONY: setup lab test test-fast test-python test-js chromium tour clean

setup: $(STAMP)

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	npm ci --no-audit --no-fund
	npm run build
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# Debian's Chromium for the browser tests (the tests never download a browser).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_tour.ipynb

tour: $(STAMP)
	$(VENV)/bin/cnnvis tour --out tour.html

test-js: $(STAMP)
	npm test

test-python: $(STAMP) chromium
	$(PY) -m pytest -q --durations=15 tests

test: test-js test-python

# The inner loop: everything but the JupyterLab/Chromium and notebook tests (no browser needed).
test-fast: $(STAMP)
	$(PY) -m pytest -q --durations=10 -m "not e2e and not notebook" tests

clean:
	rm -rf $(VENV) node_modules cnnvis_widgets/widgets/static .cache test-artifacts
