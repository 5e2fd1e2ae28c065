# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MNIST_DIR ?= ../shared/data/mnist

.PHONY: run test test-fast lint format train evaluate bench soak install install-train install-dev \
	test-docker test-scale validate-k8s chromium wrk postgresql

# Three layers, each reinstalled only when its requirements file changes: serving (make run,
# the Docker image), training (TensorFlow), and the tests on top.
$(VENV)/.serving: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.training: $(VENV)/.serving requirements-train.txt
	$(BIN)/pip install --quiet -r requirements-train.txt
	touch $@

$(VENV)/.dev: $(VENV)/.training requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.serving
install-train: $(VENV)/.training
install-dev: $(VENV)/.dev

# Serves the committed model on http://127.0.0.1:8000 (HOST, PORT, WORKERS, LOG_LEVEL).
# Installs serving's requirements only: no TensorFlow.
run: install
	$(BIN)/python -m app.serve

# Browser tests drive Debian's Chromium: Playwright cannot download its own browsers here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The corrections' tests start a throwaway PostgreSQL server of their own (Debian's server
# package, which brings the libpq that psycopg uses too).
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: install-dev chromium postgresql lint validate-k8s
	$(BIN)/python -m pytest

# Everyday work: everything but the browser, training and evaluation tests (and Docker).
test-fast: install-dev postgresql
	$(BIN)/python -m pytest -m "not browser and not training and not slow"

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The served model (default preset) and the book's recipe beside it, each with its card
# completed by the evaluation (raw, canvas-realistic and style-set accuracy).
train: install-train
	$(BIN)/python -m app.train --data-dir $(MNIST_DIR)
	$(BIN)/python -m app.train --preset seed --data-dir $(MNIST_DIR) \
		--output models/mnist_dense_seed.keras
	$(MAKE) evaluate

evaluate: install-train
	$(BIN)/python -m app.evaluate --data-dir $(MNIST_DIR) --model models/mnist_dense.keras
	$(BIN)/python -m app.evaluate --data-dir $(MNIST_DIR) --model models/mnist_dense_seed.keras

# The load generator is Debian's wrk.
wrk:
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Our server against the naive baseline under wrk; writes bench/results.md.
bench: install-train wrk
	MNIST_DIR=$(MNIST_DIR) $(BIN)/python -m bench.run

# Hostile bursts and a mixed valid/invalid load on the real server (SOAK_SECONDS, default
# 120); writes bench/soak-results.md.
soak: install-train wrk
	MNIST_DIR=$(MNIST_DIR) $(BIN)/python -m bench.soak

# Builds the Docker image, runs it and checks it (BASE_IMAGE, KEEP_IMAGE=1: see the script).
test-docker: install-dev
	MNIST_DIR=$(MNIST_DIR) VENV_PYTHON=$(BIN)/python bash scripts/test-docker.sh

# deploy/compose.yaml on a one-node Docker Swarm: 1 and 2 replicas behind HAProxy under wrk,
# a replica killed and a rolling update under load, then everything removed (about 4
# minutes; BASE_IMAGE, LOAD_SECONDS, KEEP_IMAGES=1: see the script).
test-scale: install-dev wrk
	MNIST_DIR=$(MNIST_DIR) VENV_PYTHON=$(BIN)/python bash scripts/test-scale.sh

# deploy/k8s/ against the Kubernetes API's JSON schemas, which the validator carries
# (no cluster, no download); strict: a misspelt or misplaced field fails too.
validate-k8s: install-dev
	$(BIN)/kubernetes-validate --strict deploy/k8s/*.yaml
