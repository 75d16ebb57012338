# Two commands matter: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
BUN := $(CURDIR)/.tools/node_modules/.bin/bun
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(PATH)

# Services used by tests and the demo (scripts/services.sh honours the same variables).
KAFKA_PORT ?= 9092
PG_PORT ?= 5432
MQTT_PORT ?= 1883
export TEST_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(KAFKA_PORT)
export TEST_DATABASE_URL ?= postgres://gateway:gateway@127.0.0.1:$(PG_PORT)/gateway_test
export TEST_MQTT_URL ?= mqtt://127.0.0.1:$(MQTT_PORT)

DEMO_PORT ?= 8080
DEMO_DATA ?= $(CURDIR)/.data/demo

.PHONY: setup setup-demo services services-stop demo test test-unit typecheck build bench screenshots clean

setup:
	@scripts/setup.sh

setup-demo:
	@scripts/setup.sh --no-python

services:
	@scripts/services.sh start

services-stop:
	@scripts/services.sh stop

typecheck: setup-demo
	@$(BUN) x tsc --noEmit -p .

## The appliance with its embedded control DB, a simulated plant, on http://127.0.0.1:8080
demo: setup-demo
	@scripts/services.sh start kafka
	@$(BUN) src/main.ts topics apply >/dev/null
	@scripts/demo.sh

## The whole suite against real services
test: setup services
	@$(BUN) scripts/gen-migrations-index.ts --check
	@$(BUN) x tsc --noEmit -p .
	@$(BUN) test --timeout 60000

## PNGs of the web UI's main pages (1280x800) into docs/screenshots/, from a live appliance
screenshots: setup-demo
	@scripts/services.sh start kafka
	@$(BUN) test/browser/screenshots.ts

build: setup-demo
	@$(BUN) scripts/build.ts

bench: setup services build
	@for b in binary modbus streams sinks mqtt opcua; do $(BUN) bench/$$b.ts || exit 1; done

clean:
	rm -rf dist .data/demo
