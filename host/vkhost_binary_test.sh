#!/bin/bash
# End-to-end test of the vkhost binary with the mock plugin:
#   vkhost_binary_test.sh <vkhost> <vkhost-mock-plugin>
# --version, plugin-info, usage errors, and the host restarting a killed
# plugin and stopping cleanly on SIGTERM.
set -u

VKHOST=$1
MOCK=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vkhost-binary-test-XXXXXX")
HOST_PID=""

cleanup() {
  if [[ -n $HOST_PID ]] && kill -0 "$HOST_PID" 2>/dev/null; then
    kill -KILL "$HOST_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log "$WORK"/*.out "$WORK"/*.err; do
    [[ -f $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }
  done
  exit 1
}

# Waits up to 60 s for `pattern` (extended regex) in file $1.
wait_for_log() {
  local file=$1 pattern=$2
  for _ in $(seq 600); do
    grep -Eq -- "$pattern" "$file" && return 0
    sleep 0.1
  done
  fail "no line matching '$pattern' in $file"
}

# --version
version=$("$VKHOST" --version) || fail "--version exited $?"
[[ $version =~ ^vkhost\ [0-9]+\.[0-9]+\.[0-9]+\ \(plugin\ protocol\ v1\)$ ]] ||
  fail "--version printed '$version'"

# Usage errors exit 2 with a message.
"$VKHOST" >"$WORK/usage.out" 2>"$WORK/usage.err"
rc=$?
[[ $rc -eq 2 ]] || fail "no plugin flag: exit $rc, want 2"
grep -q -- "--plugin" "$WORK/usage.err" || fail "usage error does not name --plugin"
"$VKHOST" --plugin "$MOCK" --plugin-endpoint unix:///x >/dev/null 2>"$WORK/both.err"
rc=$?
[[ $rc -eq 2 ]] || fail "both plugin flags: exit $rc, want 2"
grep -q "not both" "$WORK/both.err" || fail "usage error for both flags unclear"

# plugin-info
"$VKHOST" plugin-info --plugin "$MOCK" >"$WORK/info.out" 2>"$WORK/info.err" ||
  fail "plugin-info exited $?"
grep -Eq '^name: [a-z0-9-]+$' "$WORK/info.out" || fail "plugin-info shows no name"
grep -q '^protocol: v1$' "$WORK/info.out" || fail "plugin-info shows no protocol"
grep -q '^address: unix://' "$WORK/info.out" || fail "plugin-info shows no address"
grep -q '^capabilities:' "$WORK/info.out" || fail "plugin-info shows no capabilities"
grep -Eq '^  [A-Z_]+$' "$WORK/info.out" || fail "plugin-info lists no capability"

# plugin-info for a plugin that cannot start: exit 1 with the reason.
printf '#!/bin/bash\necho "backend unreachable" >&2\nexit 3\n' >"$WORK/broken"
chmod +x "$WORK/broken"
"$VKHOST" plugin-info --plugin "$WORK/broken" >/dev/null 2>"$WORK/broken.err"
rc=$?
[[ $rc -eq 1 ]] || fail "broken plugin-info: exit $rc, want 1"
grep -q "backend unreachable" "$WORK/broken.err" || fail "broken plugin's stderr not shown"

# Host mode: a killed plugin is restarted; SIGTERM stops everything.
"$VKHOST" --standalone --plugin "$MOCK" --node-name e2e-node >"$WORK/host.out" 2>"$WORK/host.log" &
HOST_PID=$!
wait_for_log "$WORK/host.log" 'connected \(generation 1,.*pid [0-9]+'
first=$(grep -Eo 'connected \(generation 1,.*pid [0-9]+' "$WORK/host.log" | grep -Eo '[0-9]+$')
grep -q 'e2e-node' "$WORK/host.log" || fail "host does not log its node name"
kill -KILL "$first"
wait_for_log "$WORK/host.log" 'exited: killed by signal 9.*restarting in'
wait_for_log "$WORK/host.log" 'connected \(generation 2,.*pid [0-9]+'
second=$(grep -Eo 'connected \(generation 2,.*pid [0-9]+' "$WORK/host.log" | grep -Eo '[0-9]+$')
[[ $second != "$first" ]] || fail "plugin pid did not change after restart"

kill -TERM "$HOST_PID"
wait "$HOST_PID"
rc=$?
HOST_PID=""
[[ $rc -eq 0 ]] || fail "host exited $rc after SIGTERM, want 0"
grep -q 'vkhost stopped' "$WORK/host.log" || fail "host did not log a clean stop"
if kill -0 "$second" 2>/dev/null; then fail "plugin $second still runs after the host stopped"; fi
echo "PASS"
