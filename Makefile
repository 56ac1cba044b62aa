# The two commands a newcomer runs: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test quick lint clean

$(INSTALLED): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0 -e '.[ros,dev]'
	touch $@

demo: $(INSTALLED)
	$(BIN)/hand_pose_demo --out out/demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q --durations=15 test

# Everything but the tests marked slow (over about 20 s: training, POTTER exports, the demo, large
# synthetic sets): for iteration.
quick: lint
	$(BIN)/python -m pytest -q -m "not slow" test

clean:
	rm -rf $(VENV) out .pytest_cache
