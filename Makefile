# Caskalytics: `make run` starts everything (the demo when config.toml points at simulators);
# `make test` runs the whole suite, `make check` its fast part for the edit-test loop. They set up the virtualenv
# and system packages they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check screenshot bench venv system-test-deps clean
BEACON_BENCH_FLAGS ?=          # e.g. --quick, or --soak-minutes 30

venv: $(STAMP)

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: venv
	$(PY) run.py

# Chromium drives the dashboard's browser tests and poppler-utils (pdftoppm, pdftotext) reads the PDF reports
# back; both come from Debian's packages, never a download at run time.
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v pdftoppm >/dev/null 2>&1 || { \
	  echo "Installing Debian poppler-utils for the PDF report tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }

test: venv system-test-deps
	$(PY) -m pytest -q

# Everything not marked slow (tests/slow_tests.py): no browser, stops at the first failure.
check: venv
	$(PY) -m pytest -q -x -m "not slow" -p no:cacheprovider

# The README's pictures of the real demo (docs/dashboard.png, docs/explore.png): runs the demo in a temp folder
# first (minutes); ARGS="--dir DIR" reuses a demo folder.
screenshot: venv system-test-deps
	PYTHONPATH="$(CURDIR)" $(PY) tests/dashboard/make_screenshot.py $(ARGS)

bench: venv
	@command -v goaccess >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq goaccess >/dev/null; }
	$(PY) bench/s3_ingest.py
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/beacon.py $(BEACON_BENCH_FLAGS)
	$(PY) bench/beacon_rollup.py
	$(PY) bench/export.py
	$(PY) bench/sql_api.py --export
	$(PY) bench/alerts.py
	$(PY) bench/dashboard.py

clean:
	rm -rf $(VENV) var .pytest_cache
