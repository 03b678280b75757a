# Two commands do all set-up on a fresh machine:
#   make demo   run the example app against the built-in fake WeChat (http://127.0.0.1:5000)
#   make test   run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: demo test check clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/flask --app examples/app.py run --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, format and type checks (CI runs them after the tests).
check: $(BIN)/.installed
	$(BIN)/ruff check flask_wechat tests examples
	$(BIN)/ruff format --check flask_wechat tests examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info examples/instance instance
