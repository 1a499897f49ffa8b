VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install run test api-fuzz mutation protos protos-check lint deploy-check cluster-test bench bench-peer bench-workers soak clean
.PHONY: bench-hostile bench-fairshare bench-streams bench-console

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

api-fuzz: $(PY)  ## schemathesis (every check, stateful links) against a real gateway
	$(PY) scripts/api_fuzz.py

mutation: $(PY)  ## mutants of auth, keys, quota, routing, money (slow; MUTATION_ARGS=--module auth)
	$(PY) scripts/mutate.py $(MUTATION_ARGS)

protos: $(PY)
	$(PY) scripts/gen_protos.py

# mypy sees the source folders as the ai1net.* packages through a symlink tree under
# build/ (gitignored; `make clean` removes it), as [tool.mypy] mypy_path expects.
TYPECHECK := build/typecheck/ai1net

lint: $(PY)
	$(VENV)/bin/ruff check .
	mkdir -p $(TYPECHECK)
	ln -sfn ../../../server $(TYPECHECK)/server
	ln -sfn ../../../bridge $(TYPECHECK)/bridge
	ln -sfn ../../../common $(TYPECHECK)/common
	ln -sfn ../../../demo $(TYPECHECK)/demo
	ln -sfn ../../../clients/python/ai1net/v1 $(TYPECHECK)/v1
	ln -sfn ../../../clients/python/ai1net/client $(TYPECHECK)/client
	$(VENV)/bin/mypy -p ai1net.server -p ai1net.bridge -p ai1net.common -p ai1net.demo -p ai1net.client

cluster-test: $(PY)  ## three replicas behind HAProxy on PostgreSQL and Redis, minutes (tests/cluster)
	AI1NET_CLUSTER_TEST=1 $(PY) -m pytest -s -p no:xdist tests/cluster $(PYTEST_ARGS)

deploy-check: $(PY)  ## validate deploy/: Dockerfile, compose.yaml, Kubernetes manifests, HAProxy
	$(PY) scripts/check_deploy.py

bench: $(PY)  ## AI1NET against a direct call and the bare proxies (BENCH_ARGS=--quick, --no-costs)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.run $(BENCH_ARGS)

bench-peer: $(PY)  ## LiteLLM's proxy against the same mock, in its own venv
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.peer

bench-workers: $(PY)  ## AI1NET with --workers 1 and 2, unpinned, same load
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.workers $(BENCH_ARGS)

bench-hostile: $(PY)  ## AI1NET's RSS with 8 hostile provider answers in flight (HOSTILE_ARGS=--rounds 1)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.hostile $(HOSTILE_ARGS)

bench-fairshare: $(PY)  ## a healthy model's p99, alone and with 200 calls stalled on another model
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.fairshare

bench-streams: $(PY)  ## 10,000 slow streams held by one worker: its RSS, new calls' TTFC (STREAMS_ARGS=--surface http)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.streams $(STREAMS_ARGS)

bench-console: $(PY)  ## each console page's load time in headless Chromium over 10 M events (CONSOLE_ARGS=--events 1000000)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.console_load $(CONSOLE_ARGS)

soak: $(PY)  ## AI1NET at half its measured maximum for 10 minutes (SOAK_ARGS=--duration 60)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
