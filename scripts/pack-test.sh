#!/usr/bin/env bash
# The npm package as users get it: packs the tarball (prepack builds the bundle), installs it into an
# empty project with --ignore-scripts and --offline (the bundle carries its code: no runtime
# dependency, nothing to fetch), and runs --version, --help and a --dry-run through npx there.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
node24=$(dirname "$(readlink -f "$repo/node_modules/.bin/node")")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "pack-test: FAIL: $*" >&2; exit 1; }

cd "$repo"
npm pack --silent --pack-destination "$tmp" >"$tmp/pack.out"
tarball=$tmp/$(tail -n 1 "$tmp/pack.out")
[ -f "$tarball" ] || fail "npm pack made no tarball"
listing=$(tar -tzf "$tarball")
for want in package/dist/etcd-migrate.mjs package/dist/transformer.mjs package/LICENSE package/README.md; do
  grep -qx "$want" <<<"$listing" || fail "$want is not in the tarball"
done
if grep -E '^package/(src|test|bench|scripts|image)/' <<<"$listing" >/dev/null; then
  fail "the tarball ships sources, tests or benchmarks"
fi

mkdir "$tmp/project" && cd "$tmp/project"
echo '{ "name": "pack-test", "version": "1.0.0", "private": true }' >package.json
# The Node on PATH before Node 24 is put first: when it is older, the bin must refuse it (below).
old_node=$(command -v node || true)
# Node 24 first on PATH: the bin's shebang is `env node`. npm itself may run on another Node.
export PATH="$node24:$PATH"
npm install --ignore-scripts --offline --no-audit --no-fund --silent "$tarball" \
  || fail "npm install --offline of the tarball failed"

bin=node_modules/.bin/etcd-migrate
if [ -n "$old_node" ] && [ "$("$old_node" -p 'process.versions.node.split(".")[0]')" -lt 24 ]; then
  code=0
  out=$("$old_node" "$bin" --version 2>&1) || code=$?
  if [ "$code" != 2 ] || ! grep -q 'needs Node.js 24 or newer' <<<"$out"; then
    fail "Node $("$old_node" -v) was not refused: exit $code, $out"
  fi
fi
out=$(npx --offline etcd-migrate --version) || fail "--version exited $?"
grep -q '^etcd-migrate [0-9]' <<<"$out" || fail "--version printed: $out"
out=$(npx --offline etcd-migrate --help) || fail "--help exited $?"
grep -q 'Examples:' <<<"$out" || fail "--help has no Examples section: $out"

# A data dir already at the target and a bin dir naming it: the plan is empty.
mkdir -p data/member bin && printf '3.5.30/etcd3' >data/version.txt && : >bin/etcd-3.5.30
out=$(npx --offline etcd-migrate --data-dir data --target-version 3.5.30 --bin-dir bin --dry-run --output json) \
  || fail "--dry-run exited $?"
empty='const p = JSON.parse(process.argv[1]).plan; process.exit(p.from === "3.5.30/etcd3" && !p.steps.length ? 0 : 1)'
node -e "$empty" "$out" || fail "--dry-run --output json printed: $out"
# With the real binaries (make test exports ETCD_BIN_DIR): a plan with a step, which loads the step
# machinery's chunks from the installed package.
if [ -x "${ETCD_BIN_DIR:-}/etcd-3.5.30" ] && [ -x "${ETCD_BIN_DIR:-}/etcd-3.4.23" ]; then
  printf '3.4.23/etcd3' >data/version.txt
  out=$(npx --offline etcd-migrate --data-dir data --target-version 3.5.30 --bin-dir "$ETCD_BIN_DIR" \
    --dry-run --output json) || fail "--dry-run with a step exited $?"
  node -e 'const p = JSON.parse(process.argv[1]).plan; process.exit(p.steps.length === 1 && p.first ? 0 : 1)' "$out" \
    || fail "--dry-run with a step printed: $out"
fi
echo "pack-test: ok: $(basename "$tarball") installs offline; --version, --help, --dry-run run"
