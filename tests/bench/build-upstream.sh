#!/usr/bin/env bash
# Builds upstream virtual-kubelet (with its built-in mock provider) at the
# version pinned in tests/bench/upstream/go.mod, for the side-by-side
# benchmark, into ${VKHOST_CACHE_DIR:-$HOME/.cache/vkhost}/virtual-kubelet-<version>/.
# Prints the binary's path on its last line. Not part of scripts/setup: only
# the benchmark needs it.
set -euo pipefail
readonly MODULE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/upstream" && pwd)"
version="$(awk '$1 == "github.com/virtual-kubelet/virtual-kubelet" {print $2; exit}' "${MODULE_DIR}/go.mod")"
[[ -n "${version}" ]] || { echo "build-upstream: no virtual-kubelet version in ${MODULE_DIR}/go.mod" >&2; exit 1; }
out="${VKHOST_CACHE_DIR:-${HOME}/.cache/vkhost}/virtual-kubelet-${version}/virtual-kubelet"
if [[ ! -x "${out}" ]]; then
  echo "build-upstream: building virtual-kubelet ${version} (a few minutes cold)" >&2
  mkdir -p "$(dirname "${out}")"
  (cd "${MODULE_DIR}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}.partial" \
     github.com/virtual-kubelet/virtual-kubelet/cmd/virtual-kubelet)
  mv "${out}.partial" "${out}"
fi
echo "${out}"
