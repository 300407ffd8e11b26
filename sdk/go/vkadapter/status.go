package vkadapter

import (
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

var podPhases = map[corev1.PodPhase]v1.PodPhase{
	corev1.PodPending:   v1.PodPhase_POD_PHASE_PENDING,
	corev1.PodRunning:   v1.PodPhase_POD_PHASE_RUNNING,
	corev1.PodSucceeded: v1.PodPhase_POD_PHASE_SUCCEEDED,
	corev1.PodFailed:    v1.PodPhase_POD_PHASE_FAILED,
	corev1.PodUnknown:   v1.PodPhase_POD_PHASE_UNKNOWN,
}

var conditionStatuses = map[corev1.ConditionStatus]v1.ConditionStatus{
	corev1.ConditionTrue:    v1.ConditionStatus_CONDITION_STATUS_TRUE,
	corev1.ConditionFalse:   v1.ConditionStatus_CONDITION_STATUS_FALSE,
	corev1.ConditionUnknown: v1.ConditionStatus_CONDITION_STATUS_UNKNOWN,
}

func timestamp(t metav1.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t.Time)
}

func refOf(pod *corev1.Pod) *v1.PodRef {
	return &v1.PodRef{Uid: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}
}

// toStatus translates a provider's status of pod into the protocol's. The
// phase passes through (virtual-kubelet providers set it, consistently with
// the containers); container statuses are reported for every container of
// spec, in spec order, as spec.md §5.2.2 requires, with a waiting
// ContainerCreating state for containers the provider does not report yet.
func toStatus(ref *v1.PodRef, spec *corev1.PodSpec, st *corev1.PodStatus) *v1.PodStatus {
	out := &v1.PodStatus{
		Pod:       ref,
		Phase:     podPhases[st.Phase],
		Reason:    st.Reason,
		Message:   st.Message,
		StartTime: timestampPtr(st.StartTime),
	}
	for _, ip := range st.PodIPs {
		out.PodIps = append(out.PodIps, ip.IP)
	}
	if len(out.PodIps) == 0 && st.PodIP != "" {
		out.PodIps = []string{st.PodIP}
	}
	out.InitContainerStatuses = containerStatuses(spec.InitContainers, st.InitContainerStatuses)
	out.ContainerStatuses = containerStatuses(spec.Containers, st.ContainerStatuses)
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, &v1.PodCondition{Type: string(c.Type),
			Status: conditionStatuses[c.Status], Reason: c.Reason, Message: c.Message,
			LastTransitionTime: timestamp(c.LastTransitionTime)})
	}
	return out
}

func timestampPtr(t *metav1.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamp(*t)
}

func containerStatuses(spec []corev1.Container, reported []corev1.ContainerStatus) []*v1.ContainerStatus {
	byName := make(map[string]*corev1.ContainerStatus, len(reported))
	for i := range reported {
		byName[reported[i].Name] = &reported[i]
	}
	out := make([]*v1.ContainerStatus, 0, len(spec))
	for _, c := range spec {
		cs, ok := byName[c.Name]
		if !ok {
			out = append(out, &v1.ContainerStatus{Name: c.Name, Image: c.Image, State: &v1.ContainerState{
				State: &v1.ContainerState_Waiting{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}})
			continue
		}
		out = append(out, &v1.ContainerStatus{
			Name:         c.Name,
			State:        containerState(cs.State),
			LastState:    optionalState(cs.LastTerminationState),
			Ready:        cs.Ready,
			Started:      cs.Started != nil && *cs.Started,
			RestartCount: cs.RestartCount,
			Image:        cs.Image,
			ImageId:      cs.ImageID,
			ContainerId:  cs.ContainerID,
		})
	}
	return out
}

// containerState translates a state; a state with nothing set (a provider
// that has not filled it in) is waiting, since spec.md wants every container
// to have one.
func containerState(s corev1.ContainerState) *v1.ContainerState {
	if out := optionalState(s); out != nil {
		return out
	}
	return &v1.ContainerState{State: &v1.ContainerState_Waiting{
		Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func optionalState(s corev1.ContainerState) *v1.ContainerState {
	switch {
	case s.Terminated != nil:
		t := s.Terminated
		return &v1.ContainerState{State: &v1.ContainerState_Terminated{Terminated: &v1.ContainerStateTerminated{
			ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, Message: t.Message,
			StartedAt: timestamp(t.StartedAt), FinishedAt: timestamp(t.FinishedAt), ContainerId: t.ContainerID}}}
	case s.Running != nil:
		return &v1.ContainerState{State: &v1.ContainerState_Running{Running: &v1.ContainerStateRunning{
			StartedAt: timestamp(s.Running.StartedAt)}}}
	case s.Waiting != nil:
		return &v1.ContainerState{State: &v1.ContainerState_Waiting{Waiting: &v1.ContainerStateWaiting{
			Reason: s.Waiting.Reason, Message: s.Waiting.Message}}}
	}
	return nil
}

// terminated reports whether every container of status has terminated (the
// pod's workload is over).
func terminated(st *v1.PodStatus) bool {
	for _, cs := range append(st.GetInitContainerStatuses(), st.GetContainerStatuses()...) {
		if cs.GetState().GetTerminated() == nil {
			return false
		}
	}
	return true
}
