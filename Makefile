# Quickstart: `make demo` runs the demo mission end to end; `make test` runs the whole test suite.
# Both do all the set-up themselves (Debian's Chromium, a virtualenv, the project).
VENV ?= .venv
BIN := $(VENV)/bin
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=

.PHONY: demo test setup lint bench clean

# Exit 3 is the demo stopping at its payment approval when nobody can approve (no terminal):
# the payment is refused and recorded, and the evidence is verified either way.
demo: setup
	@$(BIN)/warden demo; code=$$?; \
	  if [ $$code -eq 3 ]; then echo "demo: stopped at the approval gate (exit 3), as designed without an approver"; \
	  elif [ $$code -ne 0 ]; then exit $$code; fi

# The PostgreSQL index tests run against Debian's PostgreSQL, installed and started here
# (scripts/setup-postgres.sh prints the URL); a URL already in the environment is used as is.
test: setup lint
	WARDEN_TEST_PG_URL="$${WARDEN_TEST_PG_URL:-$$(scripts/setup-postgres.sh)}" && export WARDEN_TEST_PG_URL && \
	  $(BIN)/pytest

setup:
	@VENV=$(VENV) scripts/setup.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) warden-evidence .pytest_cache .mypy_cache .ruff_cache
