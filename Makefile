# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv system-deps bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Chromium (browser tests) and poppler-utils (PDF checks) come from Debian's packages.
system-deps:
	@bash scripts/system-deps.sh

run: venv
	@bash scripts/run.sh

test: venv system-deps
	@bash scripts/test.sh $(ARGS)

bench: venv
	$(PY) -m bench all

# The embedded PostgreSQL servers (make run's, the tests') stop before their data goes.
clean:
	-test ! -x $(PY) || $(PY) -m config.embedded_db stop var/postgres
	-test ! -x $(PY) || $(PY) -m config.embedded_db stop var/test-postgres
	rm -rf $(VENV) var .pytest_cache
