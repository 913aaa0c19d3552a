#!/usr/bin/env bash
# Stops the demo cluster started by up.sh and removes its files.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/build/bin
DEMO=$ROOT/build/demo
QS=$ROOT/examples/quickstart
[ -d "$DEMO" ] || { echo "demo: nothing to stop"; exit 0; }

# The engine daemon: SIGTERM lets a scheduled run in progress finish.
if [ -f "$DEMO/engine.pid" ]; then
  pid=$(cat "$DEMO/engine.pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
fi
TOKEN=$(cat "$DEMO/agent.token" 2>/dev/null || true)
for i in 1 2 3; do
  node="node-$i"
  addr=$(cat "$DEMO/$node/agent.addr" 2>/dev/null || true)
  # Stop the workloads through their agent, so the driver's stop runs.
  if [ -n "$addr" ] && [ -n "$TOKEN" ]; then
    for w in web app db; do
      curl -fsS -m 20 -X POST -H "Authorization: Bearer $TOKEN" "http://$addr/v1/workloads/$w/stop" >/dev/null 2>&1 || true
    done
  fi
  if [ -f "$DEMO/$node.pid" ]; then
    pid=$(cat "$DEMO/$node.pid")
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
done
# Any workload process left behind (e.g. an agent that had died).
pkill -f "$BIN/clusterguard-testworkload run" 2>/dev/null || true
rm -rf "$DEMO"
rm -rf "$QS/terraform.tfvars" "$QS/terraform.tfstate" "$QS/terraform.tfstate.backup" "$QS/.terraform" "$QS/.terraform.lock.hcl"
echo "demo: stopped and removed"
