# Two entry points that work on a fresh machine with Python 3.11 and pip:
#   make run   - create .venv if missing, start the gateway on the embedded demo config
#   make test  - create .venv if missing, run ruff, mypy and the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WHEELS := .wheels
# quickfix with TLS and the fixgw patch, built from source into $(WHEELS) (third_party/quickfix/README.md)
QUICKFIX := quickfix==1.16.0+fixgw.5

.PHONY: run test lint bench clean quickfix-tls

$(STAMP): pyproject.toml third_party/quickfix/fixgw-1.16.0.patch third_party/quickfix/build_wheel.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if $(BIN)/python third_party/quickfix/build_wheel.py --wheel-dir $(WHEELS); then \
		$(BIN)/python -m pip install -q --no-index --find-links $(WHEELS) '$(QUICKFIX)'; \
	else \
		echo "*** quickfix with TLS could not be built: installing the plain PyPI build (plain-text FIX only) ***"; \
	fi
	$(BIN)/python -m pip install -q -e '.[test]'
	-$(BIN)/python -m gateway.tls
	@touch $(STAMP)

# Build (if needed) and install the TLS-enabled quickfix into an existing .venv.
quickfix-tls:
	$(BIN)/python third_party/quickfix/build_wheel.py --wheel-dir $(WHEELS)
	$(BIN)/python -m pip install -q --no-index --find-links $(WHEELS) --force-reinstall --no-deps '$(QUICKFIX)'
	$(BIN)/python -m gateway.tls

run: $(STAMP)
	$(BIN)/fixgw serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy engine gateway feeds fixclient store seqlog roles tools

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.engine_bench

clean:
	rm -rf $(VENV) data build *.egg-info
