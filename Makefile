# lst-lightning: every command a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXP ?= tiny_lst
ARGS ?=
DATA_DIR ?= data/generated

.PHONY: help setup data train validate test test-all lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv and install the pinned dependencies (about 2 minutes)

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

data: setup  ## build the generated default corpus in data/generated (offline, seconds)
	$(PY) -m lst_lightning.data.build --out $(DATA_DIR)

train: data  ## train experiments/$(EXP).yaml (default tiny_lst); overrides in ARGS="--trainer.max_steps 50"
	$(PY) -m lst_lightning fit --config experiments/$(EXP).yaml $(ARGS)

validate: data  ## validate a checkpoint: make validate EXP=tiny_lst CKPT=runs/tiny_lst/run/checkpoints/last.ckpt
	$(PY) -m lst_lightning validate --config experiments/$(EXP).yaml --ckpt_path $(CKPT) $(ARGS)

test: setup  ## run the test suite (excludes slow and GPU tests; a few minutes)
	$(PY) -m pytest

test-all: setup  ## run every test, slow ones included (GPU tests skip without CUDA)
	$(PY) -m pytest -m "not gpu or gpu"

lint: setup  ## ruff lint and format check
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

format: setup  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests
	$(VENV)/bin/ruff format src tests

clean:  ## remove runs and built data (keeps .venv)
	rm -rf runs lightning_logs $(DATA_DIR)
