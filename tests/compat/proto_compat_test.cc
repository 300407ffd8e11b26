#include "tests/compat/proto_compat.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vkhost::compat {
namespace {

namespace pb = ::google::protobuf;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Describe(const std::vector<Incompatibility>& findings) {
  return absl::StrJoin(findings, "\n",
                       [](std::string* out, const Incompatibility& i) {
                         out->append(i.ToString());
                       });
}

// Matches one finding by its ToString() text.
MATCHER_P2(Finding, element, text,
           std::string("finding about ") + element + " saying " + text) {
  return arg.element == element &&
         arg.ToString().find(text) != std::string::npos;
}

pb::FileDescriptorProto* MutableFile(pb::FileDescriptorSet& set,
                                     const std::string& name) {
  for (auto& file : *set.mutable_file()) {
    if (file.name() == name) return &file;
  }
  ADD_FAILURE() << "no file " << name;
  return set.add_file();
}

// Looks a message up by its name relative to the v1 package, e.g.
// "Pod" or "WatchPodStatusResponse".
pb::DescriptorProto* MutableMessage(pb::FileDescriptorSet& set,
                                    const std::string& name) {
  for (auto& file : *set.mutable_file()) {
    for (auto& message : *file.mutable_message_type()) {
      if (message.name() == name) return &message;
    }
  }
  ADD_FAILURE() << "no message " << name;
  return set.add_file()->add_message_type();
}

pb::FieldDescriptorProto* MutableField(pb::FileDescriptorSet& set,
                                       const std::string& message,
                                       const std::string& field) {
  for (auto& f : *MutableMessage(set, message)->mutable_field()) {
    if (f.name() == field) return &f;
  }
  ADD_FAILURE() << "no field " << message << "." << field;
  return MutableMessage(set, message)->add_field();
}

pb::MethodDescriptorProto* MutableMethod(pb::FileDescriptorSet& set,
                                         const std::string& service,
                                         const std::string& method) {
  for (auto& file : *set.mutable_file()) {
    for (auto& s : *file.mutable_service()) {
      if (s.name() != service) continue;
      for (auto& m : *s.mutable_method()) {
        if (m.name() == method) return &m;
      }
    }
  }
  ADD_FAILURE() << "no method " << service << "." << method;
  return set.add_file()->add_service()->add_method();
}

pb::EnumDescriptorProto* MutableEnum(pb::FileDescriptorSet& set,
                                     const std::string& name) {
  for (auto& file : *set.mutable_file()) {
    for (auto& e : *file.mutable_enum_type()) {
      if (e.name() == name) return &e;
    }
  }
  ADD_FAILURE() << "no enum " << name;
  return set.add_file()->add_enum_type();
}

template <typename T>
void RemoveByName(pb::RepeatedPtrField<T>* items, const std::string& name) {
  for (int i = 0; i < items->size(); ++i) {
    if (items->Get(i).name() == name) {
      items->DeleteSubrange(i, 1);
      return;
    }
  }
  ADD_FAILURE() << "nothing named " << name << " to remove";
}

class ProtoCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = LoadDescriptorSetText(VKHOST_PROTO_BASELINE);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    baseline_ = *std::move(loaded);
    current_ = CurrentV1Descriptors();
  }

  // The findings for `current_` after a test mutated it.
  std::vector<Incompatibility> Check() {
    return FindIncompatibilities(baseline_, current_);
  }

  pb::FileDescriptorSet baseline_;
  pb::FileDescriptorSet current_;
};

constexpr char kPods[] = "vkhost/provider/v1/pods.proto";

TEST_F(ProtoCompat, CurrentMatchesBaseline) {
  // The baseline is the last release; the protos may only have grown since.
  // A finding here means a breaking change: revert it or make it a v2 package.
  const auto findings = Check();
  EXPECT_THAT(findings, IsEmpty()) << Describe(findings);
}

TEST_F(ProtoCompat, BaselineHoldsEveryV1File) {
  std::vector<std::string> names;
  for (const auto& file : baseline_.file()) {
    EXPECT_EQ(file.package(), "vkhost.provider.v1") << file.name();
    EXPECT_FALSE(file.has_source_code_info()) << file.name();
    names.push_back(file.name());
  }
  EXPECT_THAT(names, testing::UnorderedElementsAre(
                         "vkhost/provider/v1/identity.proto",
                         "vkhost/provider/v1/node.proto", kPods,
                         "vkhost/provider/v1/stats.proto",
                         "vkhost/provider/v1/streams.proto"));
}

TEST_F(ProtoCompat, UnreadableBaselineIsAnError) {
  EXPECT_EQ(LoadDescriptorSetText("/nonexistent/v1.txtpb").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ProtoCompat, RemovedFieldIsReported) {
  RemoveByName(MutableMessage(current_, "Pod")->mutable_field(), "hostname");
  EXPECT_THAT(Check(), ElementsAre(Finding("vkhost.provider.v1.Pod.hostname",
                                           "field removed (was number 13")));
}

TEST_F(ProtoCompat, RenumberedFieldIsReported) {
  MutableField(current_, "PodRef", "uid")->set_number(7);
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.PodRef.uid",
                                  "field number changed from 1 to 7")));
}

TEST_F(ProtoCompat, RenamedFieldIsReported) {
  MutableField(current_, "PodRef", "name")->set_name("pod_name");
  EXPECT_THAT(Check(), ElementsAre(Finding("vkhost.provider.v1.PodRef.name",
                                           "field renamed to \"pod_name\"")));
}

TEST_F(ProtoCompat, ChangedFieldTypeIsReported) {
  MutableField(current_, "Pod", "active_deadline_seconds")
      ->set_type(pb::FieldDescriptorProto::TYPE_INT32);
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.Pod.active_deadline_seconds",
                                  "field type changed from int64 to int32")));
}

TEST_F(ProtoCompat, ChangedMessageTypeNameIsReported) {
  MutableField(current_, "CreatePodRequest", "pod")
      ->set_type_name(".vkhost.provider.v1.PodRef");
  EXPECT_THAT(Check(),
              ElementsAre(Finding(
                  "vkhost.provider.v1.CreatePodRequest.pod",
                  "from .vkhost.provider.v1.Pod to .vkhost.provider.v1.PodRef")));
}

TEST_F(ProtoCompat, ChangedLabelIsReported) {
  MutableField(current_, "PodStatus", "pod_ips")
      ->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.PodStatus.pod_ips",
                                  "label changed from repeated to optional")));
}

TEST_F(ProtoCompat, DroppedProto3OptionalIsReported) {
  pb::DescriptorProto* request = MutableMessage(current_, "DeletePodRequest");
  pb::FieldDescriptorProto* grace = request->mutable_field(1);
  ASSERT_EQ(grace->name(), "grace_period_seconds");
  grace->clear_proto3_optional();
  grace->clear_oneof_index();
  request->clear_oneof_decl();
  EXPECT_THAT(Check(),
              ElementsAre(Finding(
                  "vkhost.provider.v1.DeletePodRequest.grace_period_seconds",
                  "proto3 `optional` removed")));
}

TEST_F(ProtoCompat, ChangedOneofMembershipIsReported) {
  // Volume.name joins the `source` oneof.
  pb::DescriptorProto* volume = MutableMessage(current_, "Volume");
  ASSERT_EQ(volume->oneof_decl(0).name(), "source");
  MutableField(current_, "Volume", "name")->set_oneof_index(0);
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.Volume.name",
                                  "oneof membership changed from none to "
                                  "\"source\"")));
}

TEST_F(ProtoCompat, RemovedMessageIsReported) {
  RemoveByName(MutableFile(current_, kPods)->mutable_message_type(),
               "SleepAction");
  const auto findings = Check();
  // The field that used it now names a missing type; the message itself is
  // what must be reported.
  EXPECT_THAT(findings, testing::Contains(Finding(
                            "vkhost.provider.v1.SleepAction",
                            "message removed or renamed")))
      << Describe(findings);
}

TEST_F(ProtoCompat, RemovedNestedEnumValueIsReported) {
  pb::DescriptorProto* event = MutableMessage(current_, "WatchPodStatusResponse");
  RemoveByName(event->mutable_enum_type(0)->mutable_value(), "TYPE_DELETED");
  EXPECT_THAT(Check(),
              ElementsAre(Finding(
                  "vkhost.provider.v1.WatchPodStatusResponse.Type.TYPE_DELETED",
                  "enum value removed (was number 3)")));
}

TEST_F(ProtoCompat, RemovedEnumValueIsReported) {
  RemoveByName(MutableEnum(current_, "Capability")->mutable_value(),
               "CAPABILITY_ATTACH");
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.Capability.CAPABILITY_ATTACH",
                                  "enum value removed (was number 8)")));
}

TEST_F(ProtoCompat, RenumberedEnumValueIsReported) {
  for (auto& value : *MutableEnum(current_, "PodPhase")->mutable_value()) {
    if (value.name() == "POD_PHASE_FAILED") value.set_number(9);
  }
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost.provider.v1.PodPhase.POD_PHASE_FAILED",
                                  "enum value number changed from 4 to 9")));
}

TEST_F(ProtoCompat, RemovedEnumIsReported) {
  RemoveByName(MutableFile(current_, kPods)->mutable_enum_type(),
               "RestartPolicy");
  EXPECT_THAT(Check(), testing::Contains(Finding(
                           "vkhost.provider.v1.RestartPolicy",
                           "enum removed or renamed")));
}

TEST_F(ProtoCompat, DroppedRpcIsReported) {
  for (auto& service : *MutableFile(current_, kPods)->mutable_service()) {
    if (service.name() == "Pods") {
      RemoveByName(service.mutable_method(), "UpdatePod");
    }
  }
  EXPECT_THAT(Check(), ElementsAre(Finding("vkhost.provider.v1.Pods.UpdatePod",
                                           "RPC removed or renamed")));
}

TEST_F(ProtoCompat, RemovedServiceIsReported) {
  RemoveByName(
      MutableFile(current_, "vkhost/provider/v1/stats.proto")->mutable_service(),
      "Stats");
  EXPECT_THAT(Check(), ElementsAre(Finding("vkhost.provider.v1.Stats",
                                           "service removed or renamed")));
}

TEST_F(ProtoCompat, FlippedStreamingIsReported) {
  MutableMethod(current_, "Pods", "WatchPodStatus")->set_server_streaming(false);
  MutableMethod(current_, "Streams", "ContainerLogs")->set_client_streaming(true);
  EXPECT_THAT(
      Check(),
      testing::UnorderedElementsAre(
          Finding("vkhost.provider.v1.Pods.WatchPodStatus",
                  "server streaming removed"),
          Finding("vkhost.provider.v1.Streams.ContainerLogs",
                  "client streaming added")));
}

TEST_F(ProtoCompat, ChangedRpcTypesAreReported) {
  pb::MethodDescriptorProto* method = MutableMethod(current_, "Node", "GetNode");
  method->set_input_type(".vkhost.provider.v1.WatchNodeRequest");
  method->set_output_type(".vkhost.provider.v1.NodeSystemInfo");
  EXPECT_THAT(
      Check(),
      ElementsAre(Finding("vkhost.provider.v1.Node.GetNode",
                          "request type changed from "
                          ".vkhost.provider.v1.GetNodeRequest"),
                  Finding("vkhost.provider.v1.Node.GetNode",
                          "response type changed from "
                          ".vkhost.provider.v1.NodeStatus")));
}

TEST_F(ProtoCompat, RenamedPackageIsReportedOncePerFile) {
  MutableFile(current_, "vkhost/provider/v1/identity.proto")
      ->set_package("vkhost.provider.v2");
  EXPECT_THAT(Check(),
              ElementsAre(Finding("vkhost/provider/v1/identity.proto",
                                  "package renamed from \"vkhost.provider.v1\" "
                                  "to \"vkhost.provider.v2\"")));
}

TEST_F(ProtoCompat, RemovedFileIsReported) {
  const auto findings = FindIncompatibilities(baseline_, {});
  EXPECT_THAT(findings, testing::Contains(Finding(kPods, "file removed")));
  EXPECT_THAT(findings, testing::Contains(Finding(
                            "vkhost.provider.v1.Pods", "service removed")));
}

TEST_F(ProtoCompat, AdditionsPass) {
  pb::DescriptorProto* pod = MutableMessage(current_, "Pod");
  pb::FieldDescriptorProto* field = pod->add_field();
  field->set_name("priority_class_name");
  field->set_number(21);
  field->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  field->set_type(pb::FieldDescriptorProto::TYPE_STRING);

  MutableFile(current_, kPods)->add_message_type()->set_name("PodOverhead");

  pb::EnumValueDescriptorProto* value =
      MutableEnum(current_, "Capability")->add_value();
  value->set_name("CAPABILITY_CHECKPOINT");
  value->set_number(11);

  for (auto& service : *MutableFile(current_, kPods)->mutable_service()) {
    if (service.name() != "Pods") continue;
    pb::MethodDescriptorProto* rpc = service.add_method();
    rpc->set_name("ResizePod");
    rpc->set_input_type(".vkhost.provider.v1.UpdatePodRequest");
    rpc->set_output_type(".vkhost.provider.v1.UpdatePodResponse");
  }

  pb::FileDescriptorProto* file = current_.add_file();
  file->set_name("vkhost/provider/v1/checkpoint.proto");
  file->set_package("vkhost.provider.v1");
  file->add_service()->set_name("Checkpoints");

  const auto findings = Check();
  EXPECT_THAT(findings, IsEmpty()) << Describe(findings);
}

TEST_F(ProtoCompat, MessageMovedToAnotherFileOfThePackagePasses) {
  pb::FileDescriptorProto* pods = MutableFile(current_, kPods);
  pb::FileDescriptorProto* moved = current_.add_file();
  moved->set_name("vkhost/provider/v1/actions.proto");
  moved->set_package("vkhost.provider.v1");
  *moved->add_message_type() = *MutableMessage(current_, "SleepAction");
  RemoveByName(pods->mutable_message_type(), "SleepAction");
  const auto findings = Check();
  EXPECT_THAT(findings, IsEmpty()) << Describe(findings);
}

TEST_F(ProtoCompat, FindingsReadAsSentences) {
  MutableField(current_, "PodRef", "uid")->set_number(7);
  const auto findings = Check();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_THAT(findings[0].ToString(),
              AllOf(HasSubstr("vkhost.provider.v1.PodRef.uid: "),
                    HasSubstr("peers would read other data")));
}

}  // namespace
}  // namespace vkhost::compat
