package vkadapter

import (
	"context"
	"io"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// PodLifecycleHandler is virtual-kubelet's node.PodLifecycleHandler: the one
// interface a wrapped provider must implement.
type PodLifecycleHandler interface {
	CreatePod(ctx context.Context, pod *corev1.Pod) error
	UpdatePod(ctx context.Context, pod *corev1.Pod) error
	DeletePod(ctx context.Context, pod *corev1.Pod) error
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error)
	GetPods(ctx context.Context) ([]*corev1.Pod, error)
}

// PodNotifier is virtual-kubelet's node.PodNotifier; with it the adapter
// serves WatchPodStatus from the provider's callbacks.
type PodNotifier interface {
	NotifyPods(ctx context.Context, notify func(*corev1.Pod))
}

// The optional methods of virtual-kubelet's nodeutil.Provider, one interface
// each so a provider may have any subset.
type (
	// ContainerLogsGetter serves ContainerLogs (CAPABILITY_CONTAINER_LOGS).
	ContainerLogsGetter interface {
		GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error)
	}
	// ContainerRunner serves Exec (CAPABILITY_EXEC).
	ContainerRunner interface {
		RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error
	}
	// ContainerAttacher serves Attach (CAPABILITY_ATTACH).
	ContainerAttacher interface {
		AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error
	}
	// PortForwarder serves PortForward (CAPABILITY_PORT_FORWARD).
	PortForwarder interface {
		PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error
	}
	// StatsSummaryGetter serves GetStatsSummary (CAPABILITY_STATS).
	StatsSummaryGetter interface {
		GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error)
	}
	// MetricsResourceGetter is recognised but not served: the vkhost
	// protocol has no metrics RPC, and the host derives /metrics/resource
	// from the stats summary.
	MetricsResourceGetter interface {
		GetMetricsResource(ctx context.Context) ([]*dto.MetricFamily, error)
	}
	// NodeConfigurer is the conventional ConfigureNode method of
	// virtual-kubelet providers (not part of an interface there): it fills a
	// Node's capacity, conditions, addresses and nodeInfo. With it the adapter
	// serves GetNode (CAPABILITY_NODE_INFO).
	NodeConfigurer interface {
		ConfigureNode(ctx context.Context, node *corev1.Node)
	}
	// Pinger is the Ping method of virtual-kubelet's node.NodeProvider; with
	// it Probe reports not ready while Ping fails.
	Pinger interface {
		Ping(ctx context.Context) error
	}
)
