# `make run` opens Studiolo, `make test` runs the whole suite headless.
# Both create .venv on first use (scripts/bootstrap.sh) and refresh it when pyproject.toml or constraints.txt
# changes, and both check first that the system libraries Qt needs are there (scripts/system_deps.py).
VENV ?= .venv
STAMP := $(VENV)/.studiolo-installed
PYTEST_ARGS ?=

.PHONY: run test lint bench lock system-deps clean-venv

$(STAMP): pyproject.toml constraints.txt scripts/bootstrap.sh
	VENV=$(VENV) scripts/bootstrap.sh

# On every run, not only when the stamp is made: a library removed since is found (ldd on a few files, ~0.2 s),
# installed as root (apt-get), or named with the command to run.
system-deps: $(STAMP)
	$(VENV)/bin/python scripts/system_deps.py --quiet

run: system-deps
	$(VENV)/bin/studiolo

test: system-deps
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# ruff on the whole tree, mypy on the public API (desktop/api); both configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: system-deps
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m benchmarks

# Rewrite the lock from .venv (after a green `make test`): every installed package pinned, except Studiolo itself
# and torch (pinned by scripts/bootstrap.sh). To move to newer packages: upgrade them in .venv, `make test`, `make lock`.
lock:
	{ echo "# The lock: the packages of the last green environment, used by scripts/bootstrap.sh (pip -c)."; \
	  echo "# Refresh with \`make lock\`. torch is pinned by scripts/bootstrap.sh, Studiolo is installed editable."; \
	  $(VENV)/bin/python -m pip freeze --exclude-editable --exclude torch; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean-venv:
	rm -rf $(VENV)
