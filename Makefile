# sts — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STS_HOME ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8080
# Debian packages: xmlsec1 is the independent verifier in tests; libxmlsec1-dev builds python-xmlsec if no wheel fits.
DEB_PACKAGES := xmlsec1 libxmlsec1-dev libxmlsec1-openssl pkg-config libxml2-dev libxslt1-dev
# The farm's tests (issue 15) start throwaway servers: PostgreSQL 15 (initdb as the postgres user), OpenLDAP's
# slapd with ldap-utils, and SoftHSM2 as the PKCS#11 token.
FARM_DEB_PACKAGES := postgresql-15 slapd ldap-utils softhsm2

.PHONY: cluster-test run test deps test-deps venv clean bench notebooks interop interop-deps record attack fuzz soak differential

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

deps:
	@if ! command -v xmlsec1 >/dev/null || ! dpkg -s libxmlsec1-dev >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); fi; \
	fi
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v slapd >/dev/null || ! command -v softhsm2-util >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FARM_DEB_PACKAGES); \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FARM_DEB_PACKAGES); fi; \
	fi
	@# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser).
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; \
	fi
	@# bench/instructions.py counts an Issue's machine instructions with valgrind's callgrind.
	@if ! command -v valgrind >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; fi; \
	fi
	@# The interop suite's Node.js peers (xml-crypto, xml-encryption) install with npm.
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; fi; \
	fi

test-deps: deps $(VENV)/.test-installed

run: $(VENV)/.installed
	$(VENV)/bin/sts --home $(STS_HOME) init
	$(VENV)/bin/sts --home $(STS_HOME) serve --host $(HOST) --port $(PORT)

test: test-deps interop-deps
	@# --dist loadgroup: the farm's tests (tests/cluster, xdist group "farm") share one farm on one worker.
	$(PY) -m pytest -n 2 -q --dist loadgroup
	@# The notebooks, each run top to bottom in one kernel (--dist loadfile keeps a notebook on one worker);
	@# --nbval-lax: the cells' asserts decide, varying outputs (ports, ids, times) are not compared.
	$(PY) -m pytest -q -n 2 --dist loadfile --nbval-lax --nbval-current-env notebooks
	@# The conformance suite against our own STS; --strict: a peer that could not be installed fails CI.
	$(PY) -m interop --quiet --strict

# The independent peers: pinned PyPI packages (python3-saml, pysaml2) into the venv, pinned npm packages
# (xml-crypto, xml-encryption, ...) under interop/node; Debian's xmlsec1 comes with `deps`.
$(VENV)/.interop-installed: $(VENV)/.test-installed interop/requirements.txt interop/node/package-lock.json
	$(PIP) install -q -r interop/requirements.txt
	@if [ -x interop/node/install.sh ]; then interop/node/install.sh; else npm ci --prefix interop/node --no-audit --no-fund; fi
	touch $@

interop-deps: test-deps $(VENV)/.interop-installed

# Conformance + interoperability: replays fixtures/recorded and runs the peers, report in build/interop/.
# Another STS: make interop STS_URL=https://sts.example STS_CERT=sts.pem STS_USER=... STS_PASSWORD=...
#              STS_APPLIES_TO=https://rp.example/ [STS_PROFILE=saml11|saml20|saml20-plain...] [STS_RP_KEY=rp.key]
interop: interop-deps
	$(PY) -m interop $(INTEROP_ARGS)

# Record fresh RST/RSTR pairs from every client peer against our STS (or STS_URL) into fixtures/recorded/live.
record: interop-deps
	$(PY) -m interop.record $(RECORD_ARGS)

$(VENV)/.notebooks-installed: $(VENV)/.test-installed pyproject.toml
	$(PIP) install -q -e '.[test,notebooks]'
	touch $@

# JupyterLab on 127.0.0.1 with the project's environment (its kernel is the venv's Python).
notebooks: test-deps $(VENV)/.notebooks-installed
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

clean:
	rm -rf $(VENV) var .pytest_cache build interop/node/node_modules

# The benchmark (bench/run.py, ~6 min, at most 15): raw RSA/ECDSA limits, `sts serve` with 1 and 2 workers under a
# load generator, the verifier, the npm saml and pysaml2 peers; report in build/bench/ (bench.json, bench.md,
# throughput.svg). make bench BENCH_ARGS="--soak-minutes 10" for the long soak.
.PHONY: bench bench-smoke
bench: interop-deps
	$(PY) bench/run.py $(BENCH_ARGS)

# The farm (issue 15): two `sts serve` nodes on a throwaway PostgreSQL, signing through SoftHSM2, users from a throwaway
# slapd; lifecycle and replay across the nodes, a directory user's claims, a node killed mid-load. `make test` runs
# it too (tests/cluster).
cluster-test: test-deps
	$(PY) -m pytest -q -p no:cacheprovider tests/cluster $(CLUSTER_ARGS)

# Every benchmark scenario for a moment (tests/bench runs it inside make test); asserts nothing about speed.
bench-smoke: interop-deps
	$(PY) bench/run.py --smoke $(BENCH_ARGS)

# The attack suite (tests/security): one case per attack, each with its precise safe outcome. Against our own STS
# by default; another one: make attack STS_URL=https://sts.example/services/sts STS_USER=... STS_PASSWORD=...
#                                  STS_APPLIES_TO=https://rp.example/  (cases that need our keys are then skipped)
attack: test-deps
	STS_URL="$(STS_URL)" $(PY) -m pytest -q -p no:cacheprovider tests/security $(ATTACK_ARGS)

# Signed requests, the STS against xmlsec1 --verify over the full product of the layouts (make test runs a pairwise
# cover): every combination must be accepted by both, every tampered variant refused; prints a summary.
differential: test-deps
	DIFFERENTIAL=full $(PY) -m pytest -q -p no:cacheprovider tests/differential $(DIFFERENTIAL_ARGS)

# Fuzzing the request parser, the WS-Security header reader and the verifier: briefly in `make test`, long here.
FUZZ_EXAMPLES ?= 20000
fuzz: test-deps
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/fuzz $(FUZZ_ARGS)

# N concurrent clients issue, validate, renew and cancel against `sts serve --workers 2` for a fixed time;
# prints throughput, p50/p99 latency and errors (exit 1 on any error). make soak SOAK_ARGS="--clients 64 --seconds 60"
soak: test-deps
	$(PY) bench/soak.py $(SOAK_ARGS)
