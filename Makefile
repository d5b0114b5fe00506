# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv system-deps bench soak clean simulate

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

# The money simulator (tests/simulation) on one seed, longer than in `make test`. A failure prints
# the shortest sequence of steps it found and the seed: `make simulate SEED=7 STEPS=200 EXAMPLES=20`.
SEED := $(or $(SEED),$(shell date +%s))
simulate: venv
	@echo "money simulation: SEED=$(SEED) STEPS=$(or $(STEPS),100) EXAMPLES=$(or $(EXAMPLES),10)"
	@DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lenserfight}" \
	  REDIS_URL="$${REDIS_URL:-redis://127.0.0.1:6379/0}" SIM_SEED=$(SEED) SIM_STEPS=$(or $(STEPS),100) \
	  SIM_EXAMPLES=$(or $(EXAMPLES),10) $(PY) -m pytest tests/simulation -q -x -k test_simulate -p no:logging -s $(ARGS)

bench: venv
	$(PY) -m bench all

# Chaos under load (bench/soak.py, docs/reliability.md): its own database, Redis, Stripe double and
# processes on loopback, all stopped at the end; exit 1 on any money violation. Not part of `make test`.
MINUTES ?= 2
soak: venv
	$(PY) -m bench.soak --minutes $(MINUTES)

# The embedded PostgreSQL servers (make run's, the tests') stop before their data goes.
clean:
	-test ! -x $(PY) || $(PY) -m config.embedded_db stop var/postgres
	-test ! -x $(PY) || $(PY) -m config.embedded_db stop var/test-postgres
	rm -rf $(VENV) var .pytest_cache
