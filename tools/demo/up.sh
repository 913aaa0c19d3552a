#!/usr/bin/env bash
# Starts a local 3-node demo cluster (real agents on 127.0.0.1, a temporary
# shared volume, sample workloads) and the engine daemon, applies
# examples/quickstart, prints the workload digest, then puts a one-minute
# schedule into the catalog and shows its first scheduled recovery point.
# `make demo-down` stops and removes it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/build/bin
DEMO=$ROOT/build/demo
QS=$ROOT/examples/quickstart
WORKLOADS=(web app db)

command -v terraform >/dev/null || { echo "demo: terraform is not on PATH" >&2; exit 1; }
[ -x "$BIN/terraform-provider-clusterguard" ] || { echo "demo: run 'make build' first" >&2; exit 1; }
[ -d "$DEMO" ] && "$ROOT/tools/demo/down.sh"

mkdir -p "$DEMO/shared"
umask 077
TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$TOKEN" > "$DEMO/agent.token"
# Agents open only the repositories their config defines, so the demo
# repository's password is known before they start (the file is 0600: umask).
REPO_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$REPO_PASSWORD" > "$DEMO/repository.password"
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$DEMO/registration.token"

# The engine daemon first, so the agents can register with it; it shares
# the SQLite catalog (and the key beside it) with the provider.
cat > "$DEMO/engine.hcl" <<HCL
catalog                 = "$DEMO/catalog.db"
agent_token_file        = "$DEMO/agent.token"
registration_token_file = "$DEMO/registration.token"
listen                  = "127.0.0.1:0"
HCL
"$BIN/terraform-provider-clusterguard" engine check --config "$DEMO/engine.hcl"
setsid nohup "$BIN/terraform-provider-clusterguard" engine serve --config "$DEMO/engine.hcl" --ready-file "$DEMO/engine.addr" \
  > "$DEMO/engine.log" 2>&1 < /dev/null &
echo $! > "$DEMO/engine.pid"
for _ in $(seq 1 100); do
  [ -s "$DEMO/engine.addr" ] && break
  kill -0 "$(cat "$DEMO/engine.pid")" 2>/dev/null || { echo "demo: the engine daemon exited; see $DEMO/engine.log" >&2; cat "$DEMO/engine.log" >&2; exit 1; }
  sleep 0.1
done
ENGINE="http://$(cat "$DEMO/engine.addr")"
echo "engine daemon listening on $ENGINE"

for i in 1 2 3; do
  node="node-$i"
  mkdir -p "$DEMO/$node"
  {
    cat <<HCL
node          = "$node"
listen        = "127.0.0.1:0"
shared_volume = "$DEMO/shared"
state_dir     = "$DEMO/$node"
token_file    = "$DEMO/agent.token"

repository "demo" {
  url           = "$DEMO/repository"
  password_file = "$DEMO/repository.password"
}

engine {
  url        = "$ENGINE"
  token_file = "$DEMO/registration.token"
  cluster    = "demo"
  interval   = "10s"
}
HCL
    for w in "${WORKLOADS[@]}"; do
      cat <<HCL

workload "$w" {
  driver = "exec"
  paths  = ["apps/$w"]
  exec {
    status  = ["$BIN/clusterguard-testworkload", "status"]
    start   = ["$BIN/clusterguard-testworkload", "start"]
    stop    = ["$BIN/clusterguard-testworkload", "stop"]
    quiesce = ["$BIN/clusterguard-testworkload", "quiesce"]
    thaw    = ["$BIN/clusterguard-testworkload", "thaw"]
    timeout = "20s"
  }
}
HCL
    done
  } > "$DEMO/$node.hcl"
  setsid nohup "$BIN/terraform-provider-clusterguard" agent --config "$DEMO/$node.hcl" \
    > "$DEMO/$node.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/$node.pid"
done

# Wait for every agent to publish its address and answer /v1/health.
declare -A EP
for i in 1 2 3; do
  node="node-$i"
  for _ in $(seq 1 100); do
    if [ -s "$DEMO/$node/agent.addr" ] && curl -fsS "http://$(cat "$DEMO/$node/agent.addr")/v1/health" >/dev/null 2>&1; then
      break
    fi
    kill -0 "$(cat "$DEMO/$node.pid")" 2>/dev/null || { echo "demo: agent $node exited; see $DEMO/$node.log" >&2; cat "$DEMO/$node.log" >&2; exit 1; }
    sleep 0.1
  done
  EP[$node]="http://$(cat "$DEMO/$node/agent.addr")"
  echo "agent $node listening on ${EP[$node]}"
done

action() { # node workload action
  curl -fsS -X POST -H "Authorization: Bearer $TOKEN" "${EP[$1]}/v1/workloads/$2/$3" >/dev/null
}
# A web server and its application server on node-1 (E16), the database on node-2.
action node-1 web start
action node-1 app start
action node-2 db start

cat > "$QS/terraform.tfvars" <<TFVARS
catalog       = "$DEMO/catalog.db"
shared_volume = "$DEMO/shared"
repository    = "$DEMO/repository"
nodes = {
  "node-1" = "${EP[node-1]}"
  "node-2" = "${EP[node-2]}"
  "node-3" = "${EP[node-3]}"
}
TFVARS
cat > "$DEMO/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/clusterguard/clusterguard" = "$BIN"
  }
  direct {}
}
RC

export TF_CLI_CONFIG_FILE=$DEMO/terraformrc CLUSTERGUARD_AGENT_TOKEN=$TOKEN
export TF_VAR_repository_password=$REPO_PASSWORD
cd "$QS"
terraform apply -auto-approve -input=false
echo
echo "Workload digest of the demo cluster:"
terraform output digest
echo
echo "First federated backup:"
terraform output backup
echo
echo "Engine daemon: $(curl -fsS "$ENGINE/health")"
(cd "$ROOT" && go run ./tools/demo/schedule -catalog "$DEMO/catalog.db" -group all -cron '* * * * *')
"$BIN/terraform-provider-clusterguard" engine check --config "$DEMO/engine.hcl"
cat <<MSG

The demo cluster runs under build/demo. Try:
  cd examples/quickstart && terraform output
  export TF_CLI_CONFIG_FILE=$DEMO/terraformrc CLUSTERGUARD_AGENT_TOKEN=\$(cat $DEMO/agent.token)
  terraform plan        # after moving a workload: curl -X POST -H "Authorization: Bearer \$CLUSTERGUARD_AGENT_TOKEN" ${EP[node-1]}/v1/workloads/web/stop
  curl $ENGINE/metrics | grep ^clusterguard_   # the daemon's metrics
  tail -f $DEMO/engine.log                       # the daemon runs the schedule every minute
Stop and remove it with: make demo-down
MSG
