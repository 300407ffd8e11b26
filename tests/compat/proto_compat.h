// tests/compat: the gate that keeps protocol v1 backward compatible.
//
// spec.md §1 says v1 only grows: a released message, field, enum value, RPC
// or package never disappears or changes meaning. The released contract is
// frozen in proto/baseline/v1.descriptor.txtpb (made by
// scripts/update-proto-baseline); this component loads it, takes the
// descriptors compiled into the binary from proto/vkhost/provider/v1 and
// lists every difference that would break a peer built against the baseline.
// Additions are never reported. The gtest beside it fails the build on any
// finding, so a breaking edit has to become a v2 package instead.
//
// The comparison works on plain FileDescriptorSet messages, so tests can feed
// it mutated copies without compiling anything.
#ifndef VKHOST_TESTS_COMPAT_PROTO_COMPAT_H_
#define VKHOST_TESTS_COMPAT_PROTO_COMPAT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.pb.h"

namespace vkhost::compat {

// One backward-incompatible change.
struct Incompatibility {
  // Fully qualified element the change is about, e.g.
  // "vkhost.provider.v1.Pod.uid" or "vkhost/provider/v1/pods.proto".
  std::string element;
  // What changed, for a reader who knows protobuf but not this tool, e.g.
  // "field number changed from 1 to 7 (peers would read other data)".
  std::string description;

  // "element: description".
  std::string ToString() const;
};

// Reads a FileDescriptorSet in protobuf text format ('#' comments allowed).
// NOT_FOUND when the file cannot be read, INVALID_ARGUMENT with the parser's
// line and column when it does not parse.
absl::StatusOr<google::protobuf::FileDescriptorSet> LoadDescriptorSetText(
    const std::string& path);

// The v1 protocol files as compiled into this binary (through vkhost_proto),
// without source info, in the same shape protoc --descriptor_set_out writes.
google::protobuf::FileDescriptorSet CurrentV1Descriptors();

// Every change from `baseline` to `current` that breaks compatibility:
// removed or renamed files, packages, messages, fields, oneof membership,
// enums, enum values, services and methods; renumbered fields and enum
// values; changed field types, type names, labels or proto3 `optional`
// presence; changed method input/output types or streaming. Empty when
// `current` only adds to `baseline`. Findings come in baseline order.
std::vector<Incompatibility> FindIncompatibilities(
    const google::protobuf::FileDescriptorSet& baseline,
    const google::protobuf::FileDescriptorSet& current);

}  // namespace vkhost::compat

#endif  // VKHOST_TESTS_COMPAT_PROTO_COMPAT_H_
