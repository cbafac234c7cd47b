# The two commands: `make run` and `make test`. Both set up everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test bench loadtest lint format install clean-db

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/flask --app app db upgrade
	$(BIN)/flask --app app seed-demo --if-empty
	@echo "童护 is serving on http://$(HOST):$(PORT)  (demo accounts: see README, password tonghu-demo-2026)"
	$(BIN)/python serve.py --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n auto

bench: $(STAMP)
	$(BIN)/python -m bench.run

# 20 users for 60 s against waitress on SQLite (and on PostgreSQL when DATABASE_URL is set)
loadtest: $(STAMP)
	$(BIN)/python -m bench.loadtest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
