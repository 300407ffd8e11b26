#!/bin/sh
# Regenerates the providerv1 stubs from proto/vkhost/provider/v1 into
# <out>/providerv1 (default: this directory, i.e. the committed stubs).
#
# The generators are pinned by the `tool` lines of go.mod (protoc-gen-go and
# protoc-gen-go-grpc) and built from the module cache; protoc is the system's
# (Debian's protoc 3.21). `go generate ./...` runs this with no argument; the
# go_sdk.generated_up_to_date test runs it into a temporary directory and
# compares. Needs: go, protoc.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
protos="$here/../../proto"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cd "$here"
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
mkdir -p "$out/providerv1"
rm -f "$out"/providerv1/*.pb.go
protoc -I "$protos" \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
  --go_out="$out" --go_opt=module=github.com/vkhost/vkhost/sdk/go \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/vkhost/vkhost/sdk/go \
  "$protos"/vkhost/provider/v1/*.proto
