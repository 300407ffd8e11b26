#!/bin/sh
# The go_sdk.generated_up_to_date test: regenerates the providerv1 stubs into
# a temporary directory with the pinned generators and compares them with the
# committed ones. Fails, saying what to run, when a .proto changed without
# `go generate ./...` in sdk/go.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc is not installed (Debian package protobuf-compiler; scripts/setup installs it)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/generate.sh" "$tmp"
if diff -r -x doc.go "$tmp/providerv1" "$here/providerv1" >"$tmp/diff.txt"; then
  echo "sdk/go/providerv1 matches proto/vkhost/provider/v1"
  exit 0
fi
head -n 60 "$tmp/diff.txt" >&2
echo >&2
echo "sdk/go/providerv1 is out of date with proto/vkhost/provider/v1." >&2
echo "Run 'go generate ./...' in sdk/go and commit the regenerated *.pb.go files." >&2
exit 1
