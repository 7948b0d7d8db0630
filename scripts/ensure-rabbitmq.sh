#!/usr/bin/env bash
# Makes sure RabbitMQ answers at $AMQP_URI (config.yaml's default otherwise):
# starts an installed server, or installs Debian's rabbitmq-server and starts it,
# or stops with a message saying what to do.
#   --management  also enable the management API (needed by nameko's test plugin)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

uri="${AMQP_URI:-pyamqp://guest:guest@127.0.0.1:5672/}"
host_port() {  # host and port of one AMQP URI
  local hostport="${1#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
  host="${hostport%%:*}"; port="${hostport##*:}"
  if [ "$port" = "$host" ]; then port=5672; fi
}

# a cluster (several nodes, ";" between them) is the user's: one answering node
# is enough, and nothing is installed or started (make cluster starts one here)
if [[ "$uri" == *";"* ]]; then
  IFS=';' read -ra nodes <<< "$uri"
  for node in "${nodes[@]}"; do
    host_port "$node"
    if port_open "$host" "$port"; then
      say "RabbitMQ answers at $host:$port (one of ${#nodes[@]} nodes in AMQP_URI)"
      exit 0
    fi
  done
  fail "none of the ${#nodes[@]} RabbitMQ nodes in AMQP_URI answers. A local cluster: make cluster"
fi
host_port "$uri"

if ! port_open "$host" "$port"; then
  is_local "$host" || fail "RabbitMQ does not answer at $host:$port (AMQP_URI). Start it there, or unset AMQP_URI to use a local one."
  if ! command -v rabbitmq-server >/dev/null; then
    apt_install rabbitmq-server || fail "RabbitMQ is not installed and this is not root. Run: sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached"
  fi
  # installing the package may have started the node already (it then only
  # needs time to open its port); starting a second one would fail
  if ! wait_for_port "$host" "$port" 3; then
    is_root || fail "RabbitMQ is installed but not running. Run: sudo rabbitmq-server -detached"
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
      say "starting RabbitMQ"
      rabbitmq-server -detached
    fi
    wait_for_port "$host" "$port" 90 || fail "RabbitMQ did not open $host:$port within 90 s; see /var/log/rabbitmq/"
  fi
fi
say "RabbitMQ answers at $host:$port"

if [ "${1:-}" = "--management" ] && ! port_open "$host" 15672; then
  is_local "$host" || fail "the RabbitMQ management API does not answer at $host:15672; enable rabbitmq_management there"
  is_root || fail "the RabbitMQ management API is off. Run: sudo rabbitmq-plugins enable rabbitmq_management"
  say "enabling the RabbitMQ management API"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for_port "$host" 15672 60 || fail "the management API did not open $host:15672 within 60 s"
  say "RabbitMQ management API answers at $host:15672"
fi
