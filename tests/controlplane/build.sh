#!/usr/bin/env bash
# Builds the control plane for vkhost's integration tests (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl) from the Go modules pinned in
# go.mod/go.sum next to this script, into a cache outside the source tree:
#
#   ${VKHOST_CACHE_DIR:-$HOME/.cache/vkhost}/k8s-<release>/bin/
#
# A build is reused while its stamp matches the hash of go.mod and go.sum, so
# running this again is cheap. Needs `go` (version per go.mod) and the Go module
# proxy; a cold build downloads ~150 MB of modules and compiles for a long time
# (see README.md for figures). Honours the usual Go environment (GOFLAGS,
# GOMODCACHE, GOCACHE, GOPROXY); e.g. GOFLAGS=-p=1 to leave cores to others.
#
# Prints the bin directory on the last line of stdout; exits non-zero with a
# message on stderr when anything fails.
set -euo pipefail

readonly MODULE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl metrics-server)

log() { echo "controlplane: $*" >&2; }
die() { echo "controlplane: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 ||
  die "'go' is not on PATH; install Go $(awk '$1 == "go" {print $2}' "${MODULE_DIR}/go.mod") or newer"
[[ -f "${MODULE_DIR}/go.sum" ]] ||
  die "${MODULE_DIR}/go.sum is missing; run 'go mod tidy' in ${MODULE_DIR}"

# The release is read from go.mod so that the pin lives in one place.
release="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "${MODULE_DIR}/go.mod")"
[[ -n "${release}" ]] || die "cannot find the k8s.io/kubernetes version in ${MODULE_DIR}/go.mod"

cache_root="${VKHOST_CACHE_DIR:-${HOME}/.cache/vkhost}"
out_dir="${cache_root}/k8s-${release}"
bin_dir="${out_dir}/bin"
stamp_file="${out_dir}/stamp"
want_stamp="$(cat "${MODULE_DIR}/go.mod" "${MODULE_DIR}/go.sum" \
  "${MODULE_DIR}/metrics-server/go.mod" "${MODULE_DIR}/metrics-server/go.sum" |
  sha256sum | cut -d' ' -f1)"

is_up_to_date() {
  [[ -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${want_stamp}" ]] || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${bin_dir}/${b}" ]] || return 1; done
}

mkdir -p "${out_dir}" || die "cannot create ${out_dir}"

# Parallel test runs may all call this script; one builds, the others wait.
exec 9>"${out_dir}/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9 || die "cannot lock ${out_dir}/.lock"
fi

if is_up_to_date; then
  log "up to date: Kubernetes ${release} control plane in ${bin_dir}"
  echo "${bin_dir}"
  exit 0
fi

log "building Kubernetes ${release} control plane into ${bin_dir}"
log "(cold builds download modules and compile for many minutes; $(go version))"

staging="$(mktemp -d "${out_dir}/bin.partial.XXXXXX")"
chmod 755 "${staging}"
trap 'rm -rf "${staging}"' EXIT

# Same version stamping as Kubernetes' own build (hack/lib/version.sh), so that
# `kubectl version` and /version report the release instead of v0.0.0-master.
minor="$(echo "${release}" | cut -d. -f2)"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X ${pkg}.gitVersion=${release} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done

# build <output> <package>...; BUILD_MODULE_DIR and BUILD_LDFLAGS override the
# module and ${ldflags}.
build() {
  local output="$1"; shift
  log "go build $*"
  local start=${SECONDS}
  (cd "${BUILD_MODULE_DIR:-${MODULE_DIR}}" &&
     CGO_ENABLED=0 go build -trimpath -ldflags "${BUILD_LDFLAGS:-${ldflags}}" -o "${output}" "$@") ||
    die "go build of $* failed (see the compiler output above)"
  log "  done in $((SECONDS - start)) s"
}

total_start=${SECONDS}
(cd "${MODULE_DIR}" && go mod download && cd metrics-server && go mod download) ||
  die "downloading modules failed; is the Go module proxy (GOPROXY=$(go env GOPROXY)) reachable?"
# The four Kubernetes commands share most packages, so one `go build` compiles
# them together; their binary names come from the package paths.
build "${staging}/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl
# The etcd server's main package is the module root go.etcd.io/etcd/server/v3,
# which `go build` would name "server".
build "${staging}/etcd" go.etcd.io/etcd/server/v3
# metrics-server (for `kubectl top`) has a module of its own, pinned to the
# k8s.io libraries of its release, and no Kubernetes version stamp.
BUILD_MODULE_DIR="${MODULE_DIR}/metrics-server" BUILD_LDFLAGS="-s -w" \
  build "${staging}/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server

for b in "${BINARIES[@]}"; do
  [[ -x "${staging}/${b}" ]] || die "build finished but ${b} is missing"
done
"${staging}/kube-apiserver" --version >&2 || die "the freshly built kube-apiserver does not run"
"${staging}/etcd" --version >&2 || die "the freshly built etcd does not run"

rm -rf "${bin_dir}" "${stamp_file}"
mv "${staging}" "${bin_dir}"
echo "${want_stamp}" > "${stamp_file}"
log "built ${BINARIES[*]} in $((SECONDS - total_start)) s"
echo "${bin_dir}"
