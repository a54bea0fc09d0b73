# stepshift: every command CI runs is a target here.
.PHONY: setup build demo test test-rust lint static fmt bench-judge bench-faults bench-scale bench-runner bench-lambda clean

SHELL := /bin/bash
VENV ?= .venv
SAM_VENV ?= .venv-sam
PYTHON ?= python3
FUNCTIONS := shift-weight check-health promote rollback record-version tally
export STEPSHIFT_VENV := $(abspath $(VENV))
export SAM_CLI_TELEMETRY := 0
export PATH := $(abspath $(VENV))/bin:$(PATH)

## setup: install the tools tests and builds need (idempotent)
setup: $(VENV)/.installed $(SAM_VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## build: the six task Lambdas for arm64 as bootstrap zips in target/lambda/<name>/
# One cargo invocation per function: Cargo unifies features across the packages of one
# invocation, and each function must link only the AWS SDKs it calls.
build: setup
	for f in $(FUNCTIONS); do cargo lambda build --release --arm64 --output-format zip -p $$f || exit 1; done

## build-<LogicalId>: what `sam build` runs for each function of template.yaml
# (BuildMethod makefile; samconfig.toml builds in the source tree, so target/ is shared
# with `make build`). Each function is built alone, so that it links only the SDKs it
# calls: SAM's own rust-cargolambda builder compiled every --bin from the workspace root,
# where Cargo unifies features across the members and every function linked every SDK.
build-ShiftWeightFunction: CRATE := shift-weight
build-CheckHealthFunction: CRATE := check-health
build-PromoteFunction: CRATE := promote
build-RollbackFunction: CRATE := rollback
build-RecordVersionFunction: CRATE := record-version
build-TallyFunction: CRATE := tally
SAM_BUILDS := build-ShiftWeightFunction build-CheckHealthFunction build-PromoteFunction \
	build-RollbackFunction build-RecordVersionFunction build-TallyFunction
.PHONY: $(SAM_BUILDS)
$(SAM_BUILDS): $(VENV)/.installed
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it" >&2; exit 2; }
	cargo lambda build --release --arm64 -p $(CRATE)
	cp target/lambda/$(CRATE)/bootstrap $(ARTIFACTS_DIR)/bootstrap

## demo: two simulated deployments on the real state machine; no AWS, no credentials
demo:
	cargo build --quiet -p stepshift-cli --no-default-features
	@echo
	@mkdir -p target/demo
	@echo "== 1. A healthy candidate: shifted to 10%, judged, promoted, watched, confirmed"
	./target/debug/stepshift simulate --scenario healthy --report target/demo/healthy.svg
	@echo
	@echo "== 2. A faulty candidate (8% errors): rolled back at its first step"
	./target/debug/stepshift simulate --scenario error-spike --report target/demo/error-spike.svg; test $$? -eq 1
	@echo
	@echo "== 3. A candidate that fails its test before traffic (a validation hook): nothing moves"
	./target/debug/stepshift simulate --hook fail; test $$? -eq 1
	@echo
	@echo "The pictures of deployments 1 and 2: target/demo/healthy.svg and target/demo/error-spike.svg (open them in a browser)"
	@echo "Try your own settings: ./target/debug/stepshift simulate --help"

## bench-judge: stepshift's judge against the alternatives; writes docs/benchmarks.md
bench-judge:
	cargo run --release -p stepshift-bench -- judge --write docs/benchmarks.md

## bench-faults: the fault campaign at scale (faults by kind, invariant violations, control-plane calls)
bench-faults:
	cargo run --release -p stepshift-bench -- faults --deployments 5000

## bench-scale: fifty deployments at once in one account that throttles (Lambda 15/s, SSM 40/s)
bench-scale:
	cargo run --release -p stepshift-bench -- scale --deployments 50 --fleets 20

## bench-runner: state transitions per strategy and simulated deployments per second
bench-runner:
	cargo run --release -p stepshift-bench -- runner

## bench-lambda: size (make build's and sam build's), init time, invocation latency and peak memory of the six task Lambdas
# Sizes come from the arm64 zips; the timings from host builds, one per function for the
# same reason as in build.
bench-lambda: build
	$(SAM_VENV)/bin/sam build --template template.yaml
	for f in $(FUNCTIONS); do cargo build --release -p $$f || exit 1; done
	cargo run --release -p stepshift-bench -- lambda

## lint: formatting and clippy, warnings are errors
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p stepshift-cli --no-default-features -- -D warnings

fmt:
	cargo fmt --all

## static: the state machine and the template, checked offline
static: setup
	./node_modules/.bin/asl-validator --json-path statemachine/deployment.asl.json
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template examples/orders-api/template.yaml

## test: everything CI checks
test: setup lint static test-rust build

test-rust: setup
	cargo test --workspace

clean:
	cargo clean
	rm -rf $(VENV) $(SAM_VENV) node_modules
