# One entry point for a fresh machine. `make test` sets everything up and runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup postgres test lint typecheck pytest bench clean interop chat fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade -q pip

# Installs pinned Python packages and builds the Rust extension (release) in place.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt bindings/openmls/Cargo.toml bindings/openmls/Cargo.lock $(shell find bindings/openmls/src -name '*.rs')
	$(BIN)/pip install -q -c constraints.txt maturin
	$(BIN)/pip install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# The node's tests run against a real PostgreSQL server they start themselves (initdb + pg_ctl on a
# free port), the discovery test makes network namespaces with iproute2's `ip`, and the chat's terminal test
# drives two `panda chat` processes in tmux: this installs
# Debian's packages for them when they are missing and we may install them.
postgres:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then missing="postgresql"; fi; \
	if ! command -v ip >/dev/null && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then missing="$$missing iproute2"; fi; \
	if ! command -v tmux >/dev/null; then missing="$$missing tmux"; fi; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
		else \
			echo "missing Debian packages:$$missing (their tests will skip)"; \
		fi; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy --strict p2panda keygroups secret_group node_adapter tui

pytest: setup postgres
	$(BIN)/pytest

test: lint typecheck pytest

# Opt-in, not part of `make test`: builds a stock aquadoggo 0.8.1 from crates.io (about 15 minutes on 2
# cores the first time) and runs the node_adapter suite through RemoteNode against it on 127.0.0.1.
AQUADOGGO_RUNNER := $(CURDIR)/interop/aquadoggo/target/release/aquadoggo-runner

interop: setup
	interop/aquadoggo/build.sh
	P2PANDA_AQUADOGGO_RUNNER=$(AQUADOGGO_RUNNER) $(BIN)/pytest tests/node_adapter -k aquadoggo -rs

# The terminal chat on a fresh machine: builds everything, then `panda chat` with the identity and data in
# the default data directory (CHAT_ARGS="--peer HOST:PORT --name NAME ..." passes options).
chat: setup
	$(BIN)/panda chat $(CHAT_ARGS)

# Coverage-guided fuzzing (atheris) of every decoder, FUZZ_SECONDS per target (FUZZ_TARGETS to choose), corpora
# kept in .fuzz/ between runs. A crash stops its target and leaves .fuzz/<target>-crash-*: make it a
# regression test in tests/fuzz/test_regressions.py. The test suite runs each target for 2 seconds.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= $(shell PYTHONPATH=. $(BIN)/python -c "from tests.fuzz.targets import TARGETS; print(*TARGETS)")

fuzz: setup
	@mkdir -p .fuzz; status=0; \
	for target in $(FUZZ_TARGETS); do \
		echo "== $$target ($(FUZZ_SECONDS) s)"; \
		PYTHONPATH=. $(BIN)/python -m tests.fuzz.run $$target .fuzz/$$target -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=.fuzz/$$target- -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units|UnexpectedError|SUMMARY)|crash-" ; \
		[ "$${PIPESTATUS[0]}" = 0 ] || status=1; \
	done; exit $$status

bench: setup
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) bindings/openmls/target interop/aquadoggo/target interop/aquadoggo/Cargo.lock secret_group/*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis
