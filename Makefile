# Every target installs what it needs into .venv first, so a fresh clone works with
# nothing but python3, pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench docs clean proto

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,docs,all]'
	touch $(STAMP)

install: $(STAMP)

# The demo needs only agentstore itself (its CLI and the example agent): not the test,
# lint and docs tools that `install` brings.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@id=$$($(BIN)/python examples/flight_agent.py --data-dir ./agent-data) && \
	$(BIN)/agentstore --data-dir ./agent-data sessions --limit 5 && echo && \
	$(BIN)/agentstore --data-dir ./agent-data replay "$$id" && echo && \
	$(BIN)/agentstore --data-dir ./agent-data stats "$$id"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

# The peers run in their own venv, so nothing they pull in touches the project's.
PEERS := bench/.venv-peers
$(PEERS)/.installed: bench/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	touch $@

# `python -m bench` rewrites bench/RESULTS.md; the others then replace their own sections
# of it. The A/B (bench/ab.py) runs each probe against the package as it was at AB_BASE
# (the last commit before this round of performance work) and against the working tree,
# interleaved. About 10 minutes here.
AB_BASE ?= 057a65f
AB_TREE := /tmp/agentstore-ab-before
bench: install $(PEERS)/.installed
	$(BIN)/python -m bench
	$(BIN)/python -m bench.server_http --seconds 2 --write bench/RESULTS.md
	$(BIN)/python -m bench.server_grpc --quick --write bench/RESULTS.md
	$(BIN)/python -m bench.postgres --quick --rounds 3 --out bench/RESULTS.md
	$(BIN)/python -m bench.ui --out bench/RESULTS.md
	$(BIN)/python -m bench.sync_peers --write bench/RESULTS.md
	rm -rf $(AB_TREE) && mkdir -p $(AB_TREE)
	git archive $(AB_BASE) agentstore agentstore_cli | tar -x -C $(AB_TREE)
	$(BIN)/python -m bench.ab --base $(AB_TREE) --rounds 3 --write bench/RESULTS.md \
	  --label "the package at $(AB_BASE) (before this round)"

# Regenerate the gRPC modules from agentstore/server/agentstore.proto; commit what changes.
proto: install
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --mypy_out=. --mypy_grpc_out=. agentstore/server/agentstore.proto

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache agent-data
