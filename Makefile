# Every target creates .venv when it is missing, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-browser docs-screenshot lint bench-diff bench-throughput bench-listing \
	bench-failover bench-readback clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reconciler demo

# Four pytest-xdist workers even on two cores: most of a test waits (on a rate window, an
# emulator, a child process); worksteal evens out the few long tests at the end.
test: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 4 --dist worksteal

# report.html in headless chromium, and the systemd unit through systemd-analyze; installs
# Debian's chromium and systemd when missing (needs root and apt, as in CI).
test-browser: $(STAMP)
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	@command -v systemd-analyze >/dev/null || (apt-get update && apt-get install -y systemd)
	$(BIN)/python -m pytest -m 'browser or system' tests/browser

# The README's picture of report.html, from the browser test's demo run.
docs-screenshot: $(STAMP)
	REPORT_SCREENSHOT=$(CURDIR)/docs/report-html.png $(BIN)/python -m pytest \
		-m browser tests/browser -k demo

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests benchmarks
	$(BIN)/ruff format --check reconciler
	$(BIN)/mypy

bench-diff: $(STAMP)
	$(BIN)/python benchmarks/diff.py

bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

bench-listing: $(STAMP)
	$(BIN)/python benchmarks/listing.py

# apply's backup: requests per 1,000 ids, one GET per id (before) vs the listing (after).
bench-readback: $(STAMP)
	$(BIN)/python benchmarks/readback.py

# Two daemons on one PostgreSQL (pgserver, or RECONCILER_TEST_POSTGRES): one is killed.
bench-failover: $(STAMP)
	$(BIN)/python benchmarks/failover.py

clean:
	rm -rf $(VENV) reconciler-demo .pytest_cache .mypy_cache .ruff_cache
