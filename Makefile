VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test protos protos-check lint bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"

install: $(PY)

run: $(PY)  ## the gateway with its demo provider, on SQLite
	$(VENV)/bin/ai1net serve --demo

test: $(PY)  ## the whole suite (PostgreSQL and Redis tests need AI1NET_TEST_*_URL)
	$(PY) scripts/gen_protos.py --check
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

protos: $(PY)
	$(PY) scripts/gen_protos.py

lint: $(PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy server bridge clients/python/ai1net/client

bench: $(PY)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
