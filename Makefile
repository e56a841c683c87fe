# Two entry points that work on a fresh machine with Python 3.11 and pip:
#   make run   - create .venv if missing, start the gateway on the embedded demo config
#   make test  - create .venv if missing, run ruff, mypy and the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fixgw serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy engine gateway feeds fixclient store seqlog roles

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.engine_bench

clean:
	rm -rf $(VENV) data build *.egg-info
