// common/json: the time formats of the Kubernetes API, written one way.
//
// metav1.Time (creationTimestamp, lastTransitionTime, Event times) has
// seconds; metav1.MicroTime (Lease renewTime, eventTime) microseconds; log
// timestamps (`kubectl logs --timestamps`) nanoseconds, RFC3339Nano. All UTC
// with a literal Z, as the API server itself writes them.
#ifndef VKHOST_COMMON_JSON_KUBE_TIME_H_
#define VKHOST_COMMON_JSON_KUBE_TIME_H_

#include <string>

#include "absl/time/time.h"

namespace vkhost::apijson {

std::string KubeTime(absl::Time t);       // 2026-12-04T15:58:10Z
std::string KubeMicroTime(absl::Time t);  // 2026-12-04T15:58:10.123456Z
std::string KubeNanoTime(absl::Time t);   // 2026-12-04T15:58:10.123456789Z

}  // namespace vkhost::apijson

#endif  // VKHOST_COMMON_JSON_KUBE_TIME_H_
