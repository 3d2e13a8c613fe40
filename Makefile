# Every target bootstraps .venv on first use: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEPLOY_TOOLS := $(VENV)/.deploy-tools

.PHONY: demo test lint typecheck serve sandbox clean bench-fanout deploy-check bench-intake \
	browser-tools bench-context agents chaos analyzers bench-scale bench-spawn

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/review-loop demo

# pytest-xdist: the tests mostly wait on git, subprocesses and PostgreSQL.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot handlers tests deploy
	$(BIN)/ruff format --check bot handlers tests deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

# Compose, Kubernetes manifests, Dockerfile and systemd units, checked offline (deploy/check.sh).
$(DEPLOY_TOOLS): $(STAMP) deploy/check-requirements.txt deploy/install-check-tools.sh
	deploy/install-check-tools.sh $(BIN)
	touch $(DEPLOY_TOOLS)

deploy-check: $(DEPLOY_TOOLS)
	deploy/check.sh $(BIN)

# Headless Chromium and its driver from Debian, for tests/e2e/test_dashboard_browser.py (the
# test installs them itself when missing, and skips saying why when apt-get cannot).
browser-tools:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver \
		|| apt-get install -y chromium chromium-driver >/dev/null 2>&1 \
		|| (apt-get update >/dev/null 2>&1 && apt-get install -y chromium chromium-driver >/dev/null 2>&1) \
		|| { echo "browser-tools: apt-get could not install chromium and chromium-driver" >&2; exit 2; }

# Analyzers from npm for the SARIF auditor tests (ESLint and Microsoft's SARIF formatter, pinned
# by tests/analyzers/package-lock.json), installed under .venv/analyzers; the tests that need
# them skip saying so when they are missing. bandit and semgrep come with the test extras.
ANALYZERS := $(VENV)/analyzers
analyzers: $(ANALYZERS)/.installed
$(ANALYZERS)/.installed: tests/analyzers/package.json tests/analyzers/package-lock.json
	@command -v npm >/dev/null || { echo "analyzers: npm is needed (Debian package npm)" >&2; exit 2; }
	mkdir -p $(ANALYZERS)
	cp tests/analyzers/package.json tests/analyzers/package-lock.json $(ANALYZERS)/
	cd $(ANALYZERS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@
# The coding-agent CLIs of the catalog's presets, at their pins (bot/agents/cli/pins.py), into
# the data directory: npm packages under .review-loop/agents/npm, aider in its own venv
# (about 1.5 GB in all). Idempotent; says so and exits 2 when a registry cannot be reached.
# The CLI tests skip, saying why, until this has run.
agents: $(STAMP)
	$(BIN)/python -m bot.agents.cli.install $(AGENTS_ARGS)

serve: $(STAMP)
	$(BIN)/review-loop serve

sandbox: $(STAMP)
	$(BIN)/review-loop sandbox

# Not part of `make test`: about 7 minutes on 2 cores (BENCH_ARGS=--quick: about 3).
bench-fanout: $(STAMP)
	$(BIN)/python -m bench.fanout $(BENCH_ARGS)

# K concurrent PRs of one installation under GitHub's write limits (not in `make test`):
# BENCH_ARGS=--quick for K = 1, 4, 16 with the limits' clock 4x faster.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

# Not part of `make test`: a few seconds, on the scripted model sandbox.
bench-context: $(STAMP)
	$(BIN)/python -m bench.context $(BENCH_ARGS)

# Not part of `make test`: about 2 minutes on 2 loaded cores (BENCH_ARGS=--quick: about 1).
# TMPDIR picks the filesystem measured (the figures in docs/benchmarks.md are on /dev/shm).
bench-spawn: $(STAMP)
	$(BIN)/python -m bench.spawn $(BENCH_ARGS)

# Not part of `make test`: about 3 minutes. Needs wrk (Debian package `wrk`), installed here
# when missing and apt-get can reach the registry.
bench-intake: $(STAMP)
	@command -v wrk >/dev/null || apt-get install -y wrk >/dev/null 2>&1 \
		|| (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1) \
		|| { echo "bench-intake needs wrk: install the Debian package wrk (apt-get install wrk);" \
		          "the package registry could not be reached from here" >&2; exit 2; }
	$(BIN)/python -m bench.intake $(BENCH_ARGS)

# Not part of `make test` (one trial of two kinds is: tests/test_chaos.py): 20 seeded trials
# per kind, about 70 minutes on 2 cores. CHAOS_ARGS="--trials 3 --kinds faults --seed 7".
CHAOS_ARGS ?= --trials 20
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .review-loop .pytest_cache .mypy_cache
