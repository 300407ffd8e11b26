#!/bin/sh
# conformance.go_example_connect: runs a plugin in connect mode on a unix
# socket in a fresh temporary directory and checks it with
# `vkhost-conformance --endpoint`. Usage: conformance_connect.sh CONFORMANCE PLUGIN
set -u
conformance=$1
plugin=$2
dir=$(mktemp -d)
socket="$dir/plugin.sock"
"$plugin" --listen "unix://$socket" 2>"$dir/plugin.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
tries=0
while [ ! -S "$socket" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "the plugin did not listen on $socket within 10 s; its log:" >&2
    cat "$dir/plugin.log" >&2
    exit 1
  fi
  sleep 0.1
done
"$conformance" --endpoint "unix://$socket"
