# Mailadmin: `make run` starts the portal, `make test` runs every test.
PYTHON_FOR_VENV := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install bench messages clean

$(PY):
	@test -n "$(PYTHON_FOR_VENV)" || { scripts/find-python; exit 1; }
	$(PYTHON_FOR_VENV) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(PY) manage.py demo_data
	DEBUG=$${DEBUG:-1} exec $(PY) manage.py runall

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP)
	scripts/ensure-chromium
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run.py

messages: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages -l fr -l de --ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=test-artifacts
	scripts/check-translations
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var/static
