# `make run` opens Studiolo, `make test` runs the whole suite headless.
# Both create .venv on first use (scripts/bootstrap.sh) and refresh it when pyproject.toml changes.
VENV ?= .venv
STAMP := $(VENV)/.studiolo-installed
PYTEST_ARGS ?=

.PHONY: run test bench clean-venv

$(STAMP): pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) scripts/bootstrap.sh

run: $(STAMP)
	$(VENV)/bin/studiolo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m benchmarks

clean-venv:
	rm -rf $(VENV)
