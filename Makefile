# The two commands a new user runs: `make demo` and `make test`. Everything else is set-up they call.
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps test lint demo bench clean crds flux-crds

setup: $(STAMP) system-deps

# Reinstalls only when pyproject.toml changes, so a second `make setup` takes a fraction of a second.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[local,kube,test]'
	touch $@

# Debian packages the local runtime and its tests use (prometheus, hey): installed when missing.
system-deps:
	@scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest

demo: setup
	$(BIN)/canaryflow demo

bench: setup
	$(PY) bench/engine.py
	$(PY) bench/dataplane.py --no-demo
	$(PY) bench/gitops.py
	$(PY) bench/kube_operator.py
	$(PY) bench/chaos.py --kills 10 --envoy-kills 10
	$(PY) bench/chaos_operator.py --kills 20
	$(PY) bench/exposure.py --policies flagger-seed,judge --faults healthy,errors-5x,errors-100x --simulate-aa 1000

# deploy/crds and the chart's crds/: regenerated from the models (tests/deploy checks that they are current).
crds: $(STAMP)
	{ echo '# Regenerate with `make crds` (canaryflow crds > deploy/crds/canaryflow.yaml, copied into the chart).'; \
	  $(BIN)/canaryflow crds; } > deploy/crds/canaryflow.yaml
	cp deploy/crds/canaryflow.yaml deploy/charts/canaryflow/crds/canaryflow.yaml

# deploy/gitops/crds: Flux's current CRDs plus the v1beta2 version of its previous releases (scripts/flux_crds.py).
flux-crds: $(STAMP)
	$(PY) scripts/flux_crds.py

clean:
	rm -rf $(VENV) .canaryflow
