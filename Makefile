# stepshift: every command CI runs is a target here.
.PHONY: setup build test test-rust lint fmt clean

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
FUNCTIONS := shift-weight check-health promote rollback record-version
export STEPSHIFT_VENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

## setup: install the tools tests and builds need (idempotent)
setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## build: the five task Lambdas for arm64 as bootstrap zips in target/lambda/<name>/
build: setup
	cargo lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))

## lint: formatting and clippy, warnings are errors
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## test: everything CI checks
test: setup lint test-rust

test-rust: setup
	cargo test --workspace

clean:
	cargo clean
	rm -rf $(VENV)
