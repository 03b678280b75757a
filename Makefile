# Two commands do all set-up on a fresh machine:
#   make demo   run the example app against the built-in fake WeChat (http://127.0.0.1:5000)
#   make test   run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# The demo's own environment: the package's dependencies (examples/requirements.txt, kept equal to
# pyproject.toml's by a test) and this checkout on its path; no test extra, no build: quick to make.
DEMO_VENV ?= .venv-demo
DEMO_BIN := $(DEMO_VENV)/bin

.PHONY: demo test check docs screenshots bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# The host's pip fills the venv when it can (pip >= 22.3: --python), which saves bootstrapping a pip
# into it; otherwise the venv gets a pip of its own. Nothing is byte-compiled ahead: Python compiles
# what the demo imports, a fraction of it.
DEMO_PIP_INSTALL := install --quiet --no-compile -r examples/requirements.txt

$(DEMO_BIN)/.installed: pyproject.toml examples/requirements.txt
	rm -rf $(DEMO_VENV)
	$(PYTHON) -m venv --without-pip $(DEMO_VENV)
	if $(PYTHON) -m pip --python $(DEMO_BIN)/python --version >/dev/null 2>&1; then \
		$(PYTHON) -m pip --python $(DEMO_BIN)/python $(DEMO_PIP_INSTALL); \
	else \
		$(PYTHON) -m venv $(DEMO_VENV) && $(DEMO_BIN)/python -m pip $(DEMO_PIP_INSTALL); \
	fi
	$(DEMO_BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "flask_wechat_checkout.pth").write_text(sys.argv[1] + "\n")' "$(CURDIR)"
	touch $@

demo: $(DEMO_BIN)/.installed
	$(DEMO_BIN)/flask --app examples/app.py run --host $(HOST) --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint, format and type checks (CI runs them after the tests).
check: $(BIN)/.installed
	$(BIN)/ruff check flask_wechat tests examples docs benchmarks
	$(BIN)/ruff format --check flask_wechat tests examples docs benchmarks
	$(BIN)/mypy

$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

# The documentation site, every warning an error (configuration and API pages are generated from the code),
# then its checks (tests/test_docs.py: no CDN, diagrams drawn offline in Chromium, both languages). The first
# build on a machine fetches the pinned Mermaid and jsdom with npm (docs/hooks.py); later builds are offline.
docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	FLASK_WECHAT_DOCS_SITE=site $(BIN)/python -m pytest tests/test_docs.py -q

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $@

# Complete logins against hand-written code and stock Authlib; see benchmarks/README.md.
bench: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Refresh docs/screenshots/ from the browser test (needs /usr/bin/chromium and CJK/emoji fonts).
screenshots: $(BIN)/.installed
	WECHAT_TEST_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/test_browser.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist site *.egg-info examples/instance instance
