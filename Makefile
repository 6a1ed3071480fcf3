# Two commands on a fresh Debian machine with Python 3.11:  `make run` (the app)  and  `make test` (the suite).
# Each sets up what it needs first: a virtual environment, the Python packages, the Fashion-MNIST
# dataset (Debian's package dataset-fashion-mnist) and, for the tests, Debian's Chromium.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q

.PHONY: run test test-fast lint bench data browser setup setup-cluster setup-dev clean lock

# The exact versions the suite passed with (requirements*.lock), resolved from the ranges in requirements*.txt.
$(VENV)/.runtime: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	touch $@

$(VENV)/.cluster: $(VENV)/.runtime requirements-cluster.lock
	$(PY) -m pip install -q -r requirements-cluster.lock
	touch $@

$(VENV)/.dev: $(VENV)/.cluster requirements-dev.lock
	$(PY) -m pip install -q -r requirements-dev.lock
	touch $@

setup: $(VENV)/.runtime data
setup-cluster: $(VENV)/.cluster data
setup-dev: $(VENV)/.dev data browser

# Install the dataset only where none is found (FMNIST_DATA_DIR, Debian's package, the Keras cache).
data: $(VENV)/.runtime
	@$(PY) -c "import sys; from fmnist_core.data import find_dataset_dir; sys.exit(find_dataset_dir() is None)" \
	|| { command -v apt-get >/dev/null && $(SUDO) apt-get update -q && $(APT_INSTALL) dataset-fashion-mnist; } \
	|| { echo "Fashion-MNIST not found and apt-get unavailable: set FMNIST_DATA_DIR to a folder with the four IDX files."; exit 1; }

# The browser tests drive Debian's Chromium; Playwright cannot download its own browser here. Headless Chromium needs
# none of its Recommends (avahi, printer setup, upower, udev, polkit, notification daemon: 149 packages on a minimal
# Debian 12) except a font: the pages draw some symbols (the Undo arrow) with DejaVu Sans, and Chromium's Arial and
# Times are Liberation. Both are named: asked for alone, fonts-liberation would stand in for fonts-dejavu-core.
browser:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -q \
	  && $(APT_INSTALL) --no-install-recommends chromium fonts-dejavu-core fonts-liberation; }

# Streamlit's WebSocket handshake is read by the `websockets` library, which takes header lines of up to 8 KB and
# never answers a longer one: a browser holding many cookies for this host (other apps' too: 20 of 3.9 KB) saw a
# blank page. 256 KB lets any browser's cookies through; the variable is read as the server starts, so it is set here.
WEBSOCKET_HEADER_LINE_BYTES := 262144

# With a Ray cluster (README, "Scaling out"): `make run FMNIST_RAY_ADDRESS=HOST:PORT` installs Ray too.
export FMNIST_RAY_ADDRESS
run: $(if $(FMNIST_RAY_ADDRESS),setup-cluster,setup)
	WEBSOCKETS_MAX_LINE_LENGTH=$(WEBSOCKET_HEADER_LINE_BYTES) \
	$(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT) --server.address $(ADDRESS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

# Two processes (pytest-xdist): one runs the browser tests in order, the other the rest, file by file (the grouping is
# tests/conftest.py's pytest_xdist_make_scheduler). A plain `pytest` runs them all in one process.
test: setup-dev lint
	$(PY) -m pytest -n 2

# The quick loop while working: no browser tests and none of the slow ones (markers in pyproject.toml).
test-fast: $(VENV)/.dev data
	$(PY) -m pytest -m "not browser and not slow"

bench: setup-dev
	$(PY) -m bench

# Refresh the locks: resolve requirements*.txt afresh in a scratch environment and pin what it installed. Then run
# `make clean test` and commit the locks only if the suite passes with them.
LOCK_VENV := .lock-venv
# PyPI has tensorflow-cpu for Linux x86-64 only (run `make lock` there): elsewhere the lock pins plain tensorflow of the
# same version, as requirements.txt asks.
TF_CPU_PINS := tensorflow_cpu==\1 ; sys_platform == "linux" and platform_machine == "x86_64"\ntensorflow==\1 ; \
  sys_platform != "linux" or platform_machine != "x86_64"
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -r requirements.txt
	{ echo "# Exact versions of requirements.txt and everything it pulls in; refresh with make lock."; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > requirements.lock
	$(LOCK_VENV)/bin/pip install -q -r requirements-cluster.txt
	{ echo "# Ray on top of requirements.lock, as tested; refresh with make lock."; echo "-r requirements.lock"; \
	  $(LOCK_VENV)/bin/pip freeze --exclude-editable | grep -vxFf requirements.lock; } > requirements-cluster.lock
	$(LOCK_VENV)/bin/pip install -q -r requirements-dev.txt
	{ echo "# The test tools on top of requirements-cluster.lock; refresh with make lock."; \
	  echo "-r requirements-cluster.lock"; $(LOCK_VENV)/bin/pip freeze --exclude-editable \
	  | grep -vxFf requirements.lock | grep -vxFf requirements-cluster.lock; } > requirements-dev.lock
	sed -i 's/^tensorflow_cpu==\(.*\)$$/$(TF_CPU_PINS)/' requirements.lock
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
