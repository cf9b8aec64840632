# The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
export HF_HUB_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 3
BOT := .venv/bin/bot

.PHONY: demo test setup train lint bench clean

setup:
	@scripts/setup.sh

train: setup
	@$(BOT) train

# DEMO_PHOTOS=../shared/datasets/clothing builds the catalogue's photos from those real photos
demo: setup train
	@$(BOT) demo-data $(if $(DEMO_PHOTOS),--photos $(DEMO_PHOTOS))
	@$(BOT) staff demo
	@$(BOT) run

test: train
	@scripts/setup.sh --browser
	.venv/bin/python -m pytest -q -rs tests

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check bot actions vision recsys knowledge tests bench
	.venv/bin/mypy

bench: train
	.venv/bin/python bench/chat_load.py

clean:
	rm -rf var models .pytest_cache
