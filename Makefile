# The kit's entry points. A fresh machine needs only Python 3 and make:
# uv is bootstrapped into .tools/ when it is not on PATH.

PYTHON ?= python3
FRAMEWORK ?= fastapi
PORT ?= 8000
# Test processes: twice the 2 cores of the CI machines, whose tests spend much
# of their time waiting on purpose (slow clients, timeouts, drains): a full run
# with 3 used 1.4 cores. The projects are installed once for all of them.
TEST_WORKERS ?= 4
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
DEMO := $(CURDIR)/.demo
# The tests and the demo run uv by name, so a bootstrapped uv must be on PATH too.
export PATH := $(patsubst %/,%,$(dir $(UV))):$(PATH)

.PHONY: demo test bench bench-quick bench-instructions resilience-report lint clean

# Render the $(FRAMEWORK) template with default answers and serve it on SQLite.
demo: .venv/.synced
	rm -rf $(DEMO)
	$(UV) run --no-sync cookiecutter . --directory templates/$(FRAMEWORK) --no-input -o $(DEMO)
	cd $(DEMO)/example-service && $(UV) sync --quiet \
		--python "$$(cd $(CURDIR) && $(UV) run --no-sync python -m kit.pythons $(DEMO)/example-service)"
	cd $(DEMO)/example-service && $(UV) run --no-sync sh -c "$$(sed -n 's/^release: *//p' Procfile)"
	@echo
	@echo "Serving $(DEMO)/example-service on port $(PORT); Ctrl-C stops it. Try:"
	@echo "  curl -i http://localhost:$(PORT)/healthz"
	@echo "  curl -i http://localhost:$(PORT)/ready"
	@echo "  curl -i -X POST http://localhost:$(PORT)/api/items -H 'Content-Type: application/json' -d '{\"name\": \"first\"}'"
	@echo "  curl -i http://localhost:$(PORT)/api/items"
	@echo "  curl -s http://localhost:$(PORT)/metrics | grep http_server"
	@echo
	cd $(DEMO)/example-service && PORT=$(PORT) OTEL_TRACES_EXPORTER=$${OTEL_TRACES_EXPORTER:-none} \
		exec $(UV) run --no-sync sh -c "exec $$(sed -n 's/^web: *//p' Procfile)"

# The whole test suite: renders every template, installs and boots each one.
# The lint runs beside the suite's first minute (rendering and installing,
# much of it waiting), and fails the target after the suite if it failed.
test: .venv/.synced
	$(UV) run --no-sync python -m kit.system
	$(MAKE) --no-print-directory lint & lint=$$!; \
	$(UV) run --no-sync pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); \
	suite=$$?; wait $$lint || { echo "make test: the lint failed (above)"; exit 1; }; exit $$suite

# The performance benchmark (docs/performance.md); minutes per framework, not part of `test`.
bench: .venv/.synced
	$(UV) run --no-sync python -m kit.system wrk
	$(UV) run --no-sync --group bench python -m bench.run $(BENCH_ARGS)
	$(UV) run --group bench python -m bench.profile
	$(UV) run --group bench python -m bench.report

# The quick mode: one short repeat of every cell (bench/quick.json), then whether
# its ratios agree with the full run's (bench/results.json); about 3 minutes.
bench-quick: .venv/.synced
	$(UV) run --no-sync python -m kit.system wrk
	$(UV) run --no-sync --group bench python -m bench.run --quick $(BENCH_ARGS)
	$(UV) run --no-sync --group bench python -m bench.agree

# What a request costs each variant in instructions, without the machine's noise
# (callgrind; bench/instructions.json); about half an hour.
bench-instructions: .venv/.synced
	$(UV) run --no-sync python -m kit.system valgrind
	$(UV) run --no-sync --group bench python -m bench.instructions $(BENCH_ARGS)

# docs/resilience.md from one run of the resilience tier.
resilience-report: .venv/.synced
	rm -rf .figures
	$(UV) run --no-sync pytest tests/test_resilience.py -n auto --dist loadgroup -q
	$(UV) run --no-sync python -m kit.resilience_report

lint: .venv/.synced
	$(UV) run --no-sync ruff check hooks kit runtime tests bench monitoring
	$(UV) run --no-sync ruff format --check hooks kit runtime tests bench monitoring
	$(UV) run --no-sync mypy

.venv/.synced: pyproject.toml $(UV)
	$(UV) sync --locked --python $(PYTHON) --quiet
	@touch $@

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv .tools && .tools/bin/python -m pip install --quiet uv

clean:
	rm -rf .venv .tools .demo
