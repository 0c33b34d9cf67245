#!/usr/bin/env bash
# The main job on a sample data dir: etcd 3.3.25 writes Kubernetes-style keys through the v2 API
# (etcd2 storage, events with a TTL), etcd-migrate converts them to etcd3 keeping every TTL, takes
# the data to 3.5.30 one minor at a time and execs etcd 3.5.30 on it, and etcdctl shows the data.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${ETCD_BIN_DIR:-$repo/.cache/etcd-bin}
work=$repo/.cache/demo
rm -rf "$work" && mkdir -p "$work"
data=$work/data
name=demo
old_client=http://127.0.0.1:12379 old_peer=http://127.0.0.1:12380
client=http://127.0.0.1:22379 peer=http://127.0.0.1:22380
ctl() { ETCDCTL_API=3 "$bin/etcdctl-$1" --endpoints "$2" "${@:3}"; }
wait_healthy() { for _ in $(seq 1 200); do ctl "$1" "$2" endpoint health >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "etcd $1 did not start" >&2; return 1; }

echo "== 1. etcd 3.3.25 writes a sample etcd2 data dir ($data)"
"$bin/etcd-3.3.25" --name $name --data-dir "$data" --listen-client-urls $old_client --advertise-client-urls $old_client \
  --listen-peer-urls $old_peer --initial-advertise-peer-urls $old_peer --initial-cluster $name=$old_peer >"$work/etcd-3.3.25.log" 2>&1 &
old=$!
wait_healthy 3.3.25 $old_client
v2put() { curl -fsS -X PUT "$old_client/v2/keys$1${3:+?ttl=$3}" --data-urlencode "value=$2" >/dev/null; }
for i in 1 2 3; do v2put /registry/pods/default/pod-$i "{\"kind\":\"Pod\",\"name\":\"pod-$i\"}"; done
v2put /registry/events/default/pod-1.started '{"kind":"Event"}' 3600
v2put /registry/events/default/pod-2.pulled '{"kind":"Event"}' 600
echo "   v2 keys: $(curl -fsS "$old_client/v2/keys/registry?recursive=true" | grep -o '"key":"[^"]*","value"' | wc -l), two of them with a TTL (3600 s, 600 s)"
kill $old; wait $old || true
printf '3.3.25/etcd2' > "$data/version.txt"
echo "   version.txt: $(cat "$data/version.txt")"

echo "== 2. etcd-migrate: 3.3.25/etcd2 -> 3.5.30/etcd3, then exec etcd 3.5.30 with the pod's flags"
cd "$repo"
PATH="$repo/node_modules/.bin:$PATH" ./bin/etcd-migrate.js --data-dir "$data" --target-version 3.5.30 --bin-dir "$bin" --name $name --port 18629 --peer-port 22380 -- \
  --name $name --listen-client-urls $client --advertise-client-urls $client \
  --listen-peer-urls $peer --initial-advertise-peer-urls $peer --initial-cluster $name=$peer >"$work/etcd-3.5.30.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_healthy 3.5.30 $client || { cat "$work/etcd-3.5.30.log"; exit 1; }
grep '^etcd-migrate:' "$work/etcd-3.5.30.log" | sed 's/^/   /'
echo "   etcd now running as pid $pid (the entrypoint's own pid): $(readlink /proc/$pid/exe)"

echo "== 3. the data, served by etcd 3.5.30"
echo "   version.txt: $(cat "$data/version.txt")"
ctl 3.5.30 $client version | sed 's/^/   /'
ctl 3.5.30 $client get /registry --prefix | paste - - | sed 's/^/   /'
for lease in $(ctl 3.5.30 $client lease list | tail -n +2); do echo "   lease: $(ctl 3.5.30 $client lease timetolive "$lease" --keys)"; done
kill -TERM $pid; wait $pid || true
trap - EXIT
echo "== done: etcd 3.5.30 stopped cleanly on SIGTERM"
