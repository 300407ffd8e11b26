// Command vkhost-go-minimal-plugin is the smallest useful vkhost plugin in
// Go: it "runs" every container the moment a pod arrives and forgets the pod
// when asked to delete it. docs/plugin-authors-go.md walks through it; the
// test suite runs vkhost-conformance against it, so what the guide shows is
// known to conform. It mirrors sdk/cpp/examples/minimal_plugin.cc.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	sdk "github.com/vkhost/vkhost/sdk/go"
	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type minimal struct {
	sdk.UnimplementedProvider // every optional RPC answers UNIMPLEMENTED
	feed                      sdk.PodStatusFeed
	mu                        sync.Mutex
	pods                      map[string]*v1.PodStatus // by UID
}

func (*minimal) PluginInfo(context.Context) *v1.GetPluginInfoResponse {
	return &v1.GetPluginInfoResponse{Name: "go-minimal", Version: "1.0.0"}
}

func (*minimal) Capabilities() []v1.Capability {
	return []v1.Capability{v1.Capability_CAPABILITY_WATCH_POD_STATUS}
}

func (m *minimal) PodStatusFeed() *sdk.PodStatusFeed { return &m.feed }

func (m *minimal) CreatePod(_ context.Context, pod *v1.Pod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pods[pod.Uid]; ok {
		return nil // idempotent by UID
	}
	now := timestamppb.Now()
	st := &v1.PodStatus{Pod: &v1.PodRef{Uid: pod.Uid, Namespace: pod.Namespace, Name: pod.Name}, StartTime: now}
	for _, c := range pod.InitContainers { // init containers "completed" at once
		done := &v1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}
		st.InitContainerStatuses = append(st.InitContainerStatuses, &v1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: &v1.ContainerState{State: &v1.ContainerState_Terminated{Terminated: done}}})
	}
	for _, c := range pod.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, &v1.ContainerStatus{Name: c.Name, Image: c.Image,
			Ready: true, Started: true, State: &v1.ContainerState{State: &v1.ContainerState_Running{
				Running: &v1.ContainerStateRunning{StartedAt: now}}}})
	}
	m.pods[pod.Uid] = st
	m.feed.Publish(st)
	return nil
}

func (m *minimal) DeletePod(_ context.Context, ref *v1.PodRef, _ *int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pods[ref.Uid]; ok {
		delete(m.pods, ref.Uid)
		m.feed.PublishDeleted(ref)
	}
	return nil // deleting an unknown pod is success
}

func (m *minimal) GetPodStatus(_ context.Context, ref *v1.PodRef) (*v1.PodStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.pods[ref.Uid]; ok {
		return st, nil
	}
	return nil, fmt.Errorf("no pod %s: %w", ref.Uid, sdk.ErrNotFound)
}

func (m *minimal) ListPods(context.Context) ([]*v1.PodStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*v1.PodStatus, 0, len(m.pods))
	for _, st := range m.pods {
		out = append(out, st)
	}
	return out, nil
}

func main() { os.Exit(sdk.ServeMain(&minimal{pods: map[string]*v1.PodStatus{}})) }
