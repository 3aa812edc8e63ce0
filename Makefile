# Every target creates .venv from pyproject.toml when it is missing, so a fresh
# clone needs nothing but python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt clean bench bench-quick bench-compare soak

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/acsd serve $(if $(CONFIG),--config $(CONFIG))

# Most of a test's time is spent waiting on a daemon or a CLI subprocess: one pytest
# process per core halves the run. TEST_JOBS=0 runs in one process (pdb, -x, reading order).
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_JOBS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache

# Benchmarks print figures (and write benchmarks/results/latest.json); they never assert.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench.py --quick

# CPU per steady session of the working tree against BASE (a commit; default HEAD), in
# alternating runs: how to tell a change's effect from the machine's drift.
bench-compare: $(STAMP)
	$(BIN)/python benchmarks/compare.py --base $(or $(BASE),HEAD)

# The daemon's RSS over rounds of sessions from ever new routers (never part of `make test`):
# a figure that keeps climbing round after round is a leak. SOAK_ARGS="--rounds 50" for longer.
soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

# --- installing as a service (run as root; see "Operations" in README.md) ---------------
# A venv in PREFIX with acsd and its dependencies, the systemd unit (ExecStart pointing
# into PREFIX) and, unless one exists, /etc/acsd/acsd.toml from config.example.toml with
# the database in the state directory. Running it again upgrades acsd in place.
PREFIX ?= /opt/acsd
UNITDIR ?= /etc/systemd/system
# The unit reads /etc/acsd (its ConfigurationDirectory): override CONFDIR only to stage.
CONFDIR ?= /etc/acsd

.PHONY: install

install:
	@# The venv links to this interpreter; the unit (ProtectHome=yes) cannot reach /root or /home.
	@real=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys._base_executable))'); \
	case "$$real" in /root/*|/home/*) echo "make install: $$real is below /root or /home," \
		"which the service cannot reach (ProtectHome=yes): make install PYTHON=/usr/bin/python3" >&2; \
		exit 2;; esac
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/pip install --quiet --upgrade pip
	rm -rf build  # stale files there would end up in the package
	$(PREFIX)/bin/pip install --quiet .
	$(PREFIX)/bin/pip install --quiet --force-reinstall --no-deps .
	rm -rf build
	chmod -R a+rX $(PREFIX)
	install -d -m 0755 $(UNITDIR) $(CONFDIR)
	sed 's#^ExecStart=/opt/acsd/#ExecStart=$(PREFIX)/#' systemd/acsd.service > $(UNITDIR)/acsd.service
	chmod 0644 $(UNITDIR)/acsd.service
	test -e $(CONFDIR)/acsd.toml || \
		sed 's#^url = "sqlite:///acsd.db"#url = "sqlite:////var/lib/acsd/acsd.db"#' \
		config.example.toml > $(CONFDIR)/acsd.toml
	@echo
	@echo "acsd is installed in $(PREFIX), its unit in $(UNITDIR)/acsd.service."
	@echo "Next steps:"
	@echo "  1. review $(CONFDIR)/acsd.toml  ($(PREFIX)/bin/acsd config check --config $(CONFDIR)/acsd.toml)"
	@echo "  2. systemctl daemon-reload && systemctl enable --now acsd"
	@echo "  3. systemctl status acsd; journalctl -u acsd -f; curl -s http://127.0.0.1:7557/readyz"
