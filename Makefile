# lst-lightning: every command a user needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EXP ?= tiny_lst
ARGS ?=
DATA_DIR ?= data/embedded

# An unknown EXP stops here, before any set-up or corpus build runs (make parses this first).
ifneq ($(filter train validate,$(MAKECMDGOALS)),)
ifeq ($(wildcard experiments/$(EXP).yaml),)
$(error EXP=$(EXP): experiments/$(EXP).yaml does not exist; the experiments are: $(sort $(basename $(notdir $(wildcard experiments/*.yaml)))))
endif
endif

.PHONY: help setup setup-system data data-generated train validate test test-all lint format clean bench eval sample export reproduce downstream

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: setup-system $(VENV)/.installed  ## system packages (as root) + .venv with the pinned dependencies (2-3 minutes)

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,judge]'
	touch $@

SYSTEM_PACKAGES := espeak-ng r-cran-janeaustenr
REALSPEECH_PACKAGES := pocketsphinx-testdata asterisk-core-sounds-en-wav asterisk-core-sounds-en

# One tolerant apt-get install per group, so a release without the real-speech packages still gets
# the corpus ones: install_group <packages> <what needs them>.
define install_group
	if dpkg -s $(1) >/dev/null 2>&1; then \
		echo "setup-system: $(1) already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ [ -n "$$APT_UPDATED" ] || DEBIAN_FRONTEND=noninteractive apt-get update -qq; } && APT_UPDATED=1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1) || \
		echo "setup-system: apt-get could not install $(1) ($(2) needs them; tests that need them skip)" >&2; \
	else \
		echo "setup-system: cannot install $(1) (needs root and apt-get);" \
			"run as root: apt-get install --no-install-recommends $(1)" >&2; \
	fi
endef

setup-system:  ## install the system packages (espeak-ng, Austen's novels, the real-speech sets) with apt-get, as root
	@APT_UPDATED=; \
	$(call install_group,$(SYSTEM_PACKAGES),the embedded corpus (not the generated one)); \
	$(call install_group,$(REALSPEECH_PACKAGES),the real-speech evaluation sets)

data: setup  ## build the embedded corpus (Austen read by espeak-ng) and its benchmark sets in data/embedded (offline, 2-5 min)
	$(PY) -m lst_lightning corpus embedded --out $(DATA_DIR)
	$(PY) -m lst_lightning corpus benchmarks --corpus $(DATA_DIR)

data-generated: setup  ## build the small generated corpus (no TTS needed, seconds) in data/generated
	$(PY) -m lst_lightning corpus generated --out data/generated
	$(PY) -m lst_lightning corpus benchmarks --corpus data/generated

train: data  ## train experiments/$(EXP).yaml (default tiny_lst; a new run-N if one exists); resume: ARGS="--ckpt_path last"
	$(PY) -m lst_lightning fit --config experiments/$(EXP).yaml $(ARGS)

validate: setup  ## validate a checkpoint into <run>/validate/step_N: make validate [EXP=tiny_lst] [CKPT=...]
	$(PY) -m lst_lightning validate --ckpt $(or $(CKPT),runs/$(EXP)/run/checkpoints/last.ckpt) $(ARGS)

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
	rm -rf runs lightning_logs $(DATA_DIR) $(DATA_DIR).work data/generated

sample: setup  ## continue a prompt with a checkpoint: make sample [EXP=tiny_lst] PROMPT="She was" [THEN=speech|text]
	$(PY) -m lst_lightning sample --ckpt $(or $(CKPT),runs/$(EXP)/run/checkpoints/last.ckpt) --text "$(PROMPT)" $(if $(THEN),--then $(THEN)) $(ARGS)

export: setup  ## Hugging Face folder of a checkpoint: make export [EXP=tiny_lst] [CKPT=...] [OUT=exports/$(EXP)]
	$(PY) -m lst_lightning export --ckpt $(or $(CKPT),runs/$(EXP)/run/checkpoints/last.ckpt) --out $(or $(OUT),exports/$(EXP)) $(ARGS)

reproduce: data  ## LST vs baselines at equal FLOPs and tokens, 3 seeds, 2 scales -> docs/reproduction.md (~40 min; ARGS=--quick ~15 min)
	$(PY) -m lst_lightning reproduce $(ARGS)

downstream: data  ## the paper's Tab. 5 at tiny scale: fine-tunes 3 systems on ASR and TTS, decodes, scores -> docs/downstream.md (~30 min)
	$(PY) -m lst_lightning downstream --pretrain-steps 100 $(ARGS)

bench: data  ## LST vs baseline throughput/FLOPs, baseline vs HF Llama, data pipeline, unit tokenizer -> docs/benchmarks.md
	$(PY) benchmarks/bench.py --out docs/benchmarks.md

eval: setup  ## zero-shot benchmarks, 4 directions: make eval [CKPT=runs/$(EXP)/run/checkpoints/last.ckpt] [SETS="topic swuggy"]
	$(PY) -m lst_lightning eval --ckpt $(or $(CKPT),runs/$(EXP)/run/checkpoints/last.ckpt) $(if $(SETS),--sets $(SETS)) $(ARGS)
