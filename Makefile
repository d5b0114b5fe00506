# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv system-deps bench soak clean

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

# Chaos under load (bench/soak.py, docs/reliability.md): its own database, Redis, Stripe double and
# processes on loopback, all stopped at the end; exit 1 on any money violation. Not part of `make test`.
MINUTES ?= 2
soak: venv
	$(PY) -m bench.soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) var .pytest_cache
