# etcd-migrate: make demo (the main job on a sample data dir), make test (what CI runs).
BIN_DIR ?= $(CURDIR)/.cache/etcd-bin
export ETCD_BIN_DIR := $(BIN_DIR)
# The image: built offline from the binaries of BIN_DIR (ETCD_SOURCE=local), or from the official
# release tarballs (ETCD_SOURCE=release, needs the registry images and the network).
IMAGE ?= localhost/etcd-migrate:dev
ETCD_SOURCE ?= local
# make rehearse DATA=<data dir> TARGET=<x.y.z> [STORAGE=etcd3|etcd2] [ENGINE=auto|podman|docker|none]
STORAGE ?= etcd3
ENGINE ?= auto

.PHONY: all deps etcd-bin podman test unit demo typecheck image image-test rehearse bench clean
all: test

# npm packages, with the pinned Node 24 (node_modules/.bin/node).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@
deps: node_modules/.package-lock.json

# The bundled etcd versions, laid out as in the image: $(BIN_DIR)/etcd-<x.y.z>, etcdctl-..., etcdutl-...
etcd-bin:
	bash scripts/install-etcd.sh $(BIN_DIR)

# Podman (with runc) from Debian's packages, to build and run the image; installed as root when missing.
podman:
	@command -v podman >/dev/null && command -v runc >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null; \
	else echo "podman is not installed and this is not root: the image tests will be skipped (as root: apt-get install podman runc)"; fi

# Everything, the image test included (it builds the image from this checkout).
test: deps etcd-bin podman
	npm test
	@node_modules/.bin/node scripts/test-summary.mjs

unit: deps
	npx vitest run test/unit

typecheck: deps
	npm run typecheck

# Makes a 3.3.25 etcd2 data dir (v2 keys with TTLs), migrates it to 3.5.30/etcd3, execs etcd 3.5.30 on it and shows the data.
demo: deps etcd-bin
	bash scripts/demo.sh

image: deps etcd-bin podman
	IMAGE=$(IMAGE) ETCD_SOURCE=$(ETCD_SOURCE) bash image/build.sh

image-test: deps etcd-bin podman
	npx vitest run test/image

# A rehearsal on a copy of DATA (never changed): in the image when podman has it, else the local binaries.
rehearse: deps etcd-bin
	@test -n "$(DATA)" && test -n "$(TARGET)" || { echo "usage: make rehearse DATA=<data dir> TARGET=<x.y.z> [STORAGE=etcd3|etcd2] [ENGINE=auto|podman|docker|none]" >&2; exit 2; }
	@if [ "$(ENGINE)" != none ] && command -v podman >/dev/null; then $(MAKE) --no-print-directory image >/dev/null; fi
	@eval "$$(bash scripts/podman-conf.sh)" && node_modules/.bin/node bin/etcd-migrate.js rehearse --data-dir "$(DATA)" \
	  --target-version "$(TARGET)" --target-storage "$(STORAGE)" --engine "$(ENGINE)" --image "$(IMAGE)" --bin-dir "$(BIN_DIR)"

# Issue 8's benchmarks, each side by side with its baseline in one run (results: BENCHMARKS.md).
# Sizes: BENCH_KEYS (etcd2 -> etcd3 conversions), BENCH_MIB (backup and downgrade); BENCH_BASELINE
# (a commit) adds that commit's entrypoint to the conversions. The defaults take ~15 min on 2 cores;
# the issue's sizes: make bench BENCH_KEYS="10000 100000 1000000" BENCH_MIB=250,500,1000.
# BENCH_GB: issue 19's sizes (GB of db) for backups and a whole one-minor run (bench/scale.ts; the
# data, made once, needs ~3x the largest size on disk; 1,4,8 takes ~25 min).
BENCH_GB ?= 1,4,8
BENCH_KEYS ?= 10000 100000
BENCH_MIB ?= 250
BENCH_BASELINE ?=
BENCH_DATA ?= $(CURDIR)/.cache/bench-data
bench: deps etcd-bin
	node_modules/.bin/node bench/steps.ts 15
	node_modules/.bin/node bench/chain37.ts 9
	@for k in $(BENCH_KEYS); do BENCH_DATA=$(BENCH_DATA)/v2-$$k BENCH_BASELINE=$(BENCH_BASELINE) node_modules/.bin/node bench/convert.ts $$k $(BIN_DIR) 23500 1 || exit 1; done
	node_modules/.bin/node bench/growth.ts --sizes $(BENCH_MIB) --runs 3 --data $(BENCH_DATA)/gb
	node_modules/.bin/node bench/scale.ts --sizes $(BENCH_GB) --data $(BENCH_DATA)/scale

clean:
	rm -rf .cache/demo .cache/image .cache/podman .cache/bench-data
