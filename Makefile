# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-team test-ui lint clean system-deps

$(STAMP): pyproject.toml labextension/package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch lies on local disk; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[torch,sklearn,dask,search,schedule,analyse,team,test,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check jupyter_mlops tests benchmarks examples
	$(BIN)/ruff format --check jupyter_mlops tests benchmarks examples
	$(BIN)/mypy
	# the install built the sidebar, so its node_modules are there
	cd labextension && PATH=$(abspath $(BIN)):$$PATH jlpm lint:check

# Chromium for the browser tests and PostgreSQL for the team store, from Debian's packages
system-deps:
	bash scripts/system-deps.sh

# most tests wait on kernels and servers, so three workers keep two cores busy; a file's
# tests stay on one worker, where its module fixtures were made; files go out in collection
# order (heaviest first, see tests/conftest.py), not xdist's most-tests-first; the slowest are
# listed, since they bound the wall time
test: lint system-deps
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=15
	bash scripts/team-tests.sh -n 2 --dist loadfile
	bash scripts/ui-tests.sh

# one part alone: the team-store tests, or the browser tests (extra arguments: ARGS="-g promote")
test-team: $(STAMP) system-deps
	bash scripts/team-tests.sh $(ARGS)

test-ui: $(STAMP) system-deps
	bash scripts/ui-tests.sh $(ARGS)

clean:
	rm -rf $(VENV) .mlops jupyter_mlops/labextension labextension/node_modules labextension/lib
