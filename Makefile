# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install the project into it first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= out/demo

.PHONY: setup demo test lint wheel bench-peer clean

setup: $(STAMP)

# Re-install only when the package metadata changes; the editable install
# picks up source edits by itself.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,notebooks]"
	touch $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(BIN)/m2nist-gen $(DEMO) --sample --train 2000 --test 500 --seed 0 \
		--format both --preview $(DEMO)/preview.png --force

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MPLBACKEND=Agg $(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The one file to hand a class: notebooks on Colab install it from beside themselves.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .

# The peer that benchmarks/bench_fullfcn.py times our nets against: torchfcn 1.9.7
# (wkentaro/pytorch-fcn), without its dependency chain, which no longer builds.
bench-peer: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python -m pip install --quiet --no-deps torchfcn==1.9.7

clean:
	rm -rf $(VENV) build dist *.egg-info out
