package sdk

import (
	"context"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// UnimplementedProvider answers UNIMPLEMENTED to every optional Provider
// method and reports ready from Probe. Embed it by value in a provider so
// that only the methods the backend supports need writing, and so that RPCs
// added to v1 later compile against old plugins. It has no state and is safe
// for concurrent use.
type UnimplementedProvider struct{}

// Probe reports ready.
func (UnimplementedProvider) Probe(context.Context) (*v1.ProbeResponse, error) {
	return &v1.ProbeResponse{Ready: true}, nil
}

// GetNode answers UNIMPLEMENTED.
func (UnimplementedProvider) GetNode(context.Context, *v1.GetNodeRequest) (*v1.NodeStatus, error) {
	return nil, unimplemented("Node.GetNode")
}

// WatchNode answers UNIMPLEMENTED.
func (UnimplementedProvider) WatchNode(context.Context, *v1.WatchNodeRequest, func(*v1.NodeStatus) error) error {
	return unimplemented("Node.WatchNode")
}

// CreatePod answers UNIMPLEMENTED.
func (UnimplementedProvider) CreatePod(context.Context, *v1.Pod) error {
	return unimplemented("Pods.CreatePod")
}

// UpdatePod answers UNIMPLEMENTED.
func (UnimplementedProvider) UpdatePod(context.Context, *v1.Pod) error {
	return unimplemented("Pods.UpdatePod")
}

// DeletePod answers UNIMPLEMENTED.
func (UnimplementedProvider) DeletePod(context.Context, *v1.PodRef, *int64) error {
	return unimplemented("Pods.DeletePod")
}

// GetPodStatus answers UNIMPLEMENTED.
func (UnimplementedProvider) GetPodStatus(context.Context, *v1.PodRef) (*v1.PodStatus, error) {
	return nil, unimplemented("Pods.GetPodStatus")
}

// ListPods answers UNIMPLEMENTED.
func (UnimplementedProvider) ListPods(context.Context) ([]*v1.PodStatus, error) {
	return nil, unimplemented("Pods.ListPods")
}

// ContainerLogs answers UNIMPLEMENTED.
func (UnimplementedProvider) ContainerLogs(context.Context, *v1.ContainerLogsRequest, *LogWriter) error {
	return unimplemented("Streams.ContainerLogs")
}

// Exec answers UNIMPLEMENTED.
func (UnimplementedProvider) Exec(context.Context, *v1.ExecStart, ProcessSession) (*v1.ExitStatus, error) {
	return nil, unimplemented("Streams.Exec")
}

// Attach answers UNIMPLEMENTED.
func (UnimplementedProvider) Attach(context.Context, *v1.AttachStart, ProcessSession) (*v1.ExitStatus, error) {
	return nil, unimplemented("Streams.Attach")
}

// PortForward answers UNIMPLEMENTED.
func (UnimplementedProvider) PortForward(context.Context, *v1.PortForwardStart, PortForwardSession) error {
	return unimplemented("Streams.PortForward")
}

// GetStatsSummary answers UNIMPLEMENTED.
func (UnimplementedProvider) GetStatsSummary(context.Context) (*v1.GetStatsSummaryResponse, error) {
	return nil, unimplemented("Stats.GetStatsSummary")
}
