# etcd-migrate: make demo (the main job on a sample data dir), make test (what CI runs).
BIN_DIR ?= $(CURDIR)/.cache/etcd-bin
export ETCD_BIN_DIR := $(BIN_DIR)

.PHONY: all deps etcd-bin test unit demo typecheck clean
all: test

# npm packages, with the pinned Node 24 (node_modules/.bin/node).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@
deps: node_modules/.package-lock.json

# The bundled etcd versions, laid out as in the image: $(BIN_DIR)/etcd-<x.y.z>, etcdctl-..., etcdutl-...
etcd-bin:
	bash scripts/install-etcd.sh $(BIN_DIR)

test: deps etcd-bin
	npm test

unit: deps
	npx vitest run test/unit

typecheck: deps
	npm run typecheck

# Makes a 3.3.25 data dir, migrates it to 3.5.30, execs etcd 3.5.30 on it and shows the data.
demo: deps etcd-bin
	bash scripts/demo.sh

clean:
	rm -rf .cache/demo
