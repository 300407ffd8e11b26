// Package sdk is the vkhost Go SDK: write a provider plugin by implementing
// one interface.
//
// A plugin is a process that runs pods on some backend for vkhost (see
// proto/vkhost/provider/v1/spec.md). With this SDK a plugin author writes a
// type that implements [Provider] — usually by embedding
// [UnimplementedProvider] and overriding what the backend supports — lists
// the matching capabilities, and calls [Serve] (or [ServeMain] from main).
// The SDK does the rest: the launch-mode handshake or connect-mode listening,
// gRPC plumbing and stream framing, grpc.health.v1, capability gating, the
// WatchPodStatus snapshot/SYNCED/changes protocol fed from a [PodStatusFeed],
// and clean shutdown on SIGTERM, SIGINT or when the host goes away.
//
// Errors map to gRPC codes: return an error wrapping [ErrNotFound],
// [ErrInvalidArgument], ... (for example fmt.Errorf("pod %s: %w", uid,
// sdk.ErrNotFound)), or a gRPC status error, which passes through unchanged.
// spec.md §7 says which code each RPC returns when.
//
// Concurrency: the SDK calls Provider methods concurrently from many
// goroutines, several at once and while streams are open. Implementations
// must be safe for concurrent use. Every method gets a context that is done
// when the host cancels the call or the plugin shuts down. Messages a
// provider returns are serialised (and, for WatchPodStatus, compared) after
// the method returns: do not modify them afterwards; build a new status for
// every change instead.
//
// The generated protocol types live in package
// github.com/vkhost/vkhost/sdk/go/providerv1 (imported here as v1).
package sdk

import (
	"context"
	"io"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// Provider is the plugin's backend. Method comments name the RPC and its
// contract; spec.md is the full text. Embed [UnimplementedProvider] to get an
// UNIMPLEMENTED answer for every optional method you leave out; PluginInfo
// and Capabilities have no default, so every plugin states who it is.
type Provider interface {
	// PluginInfo returns the plugin's name (a DNS-1123 label) and version.
	PluginInfo(ctx context.Context) *v1.GetPluginInfoResponse
	// Capabilities lists the optional features implemented. It is read once
	// when Serve starts and must not change. List
	// CAPABILITY_WATCH_POD_STATUS only if the provider also implements
	// [PodStatusSource] and publishes every status change there.
	Capabilities() []v1.Capability
	// Probe reports whether the backend takes work now (ready=false with a
	// message when not); an error means the plugin itself is unhealthy.
	Probe(ctx context.Context) (*v1.ProbeResponse, error)

	// GetNode returns the backend's node facts (CAPABILITY_NODE_INFO).
	GetNode(ctx context.Context, req *v1.GetNodeRequest) (*v1.NodeStatus, error)
	// WatchNode sends the current NodeStatus, then a new one on every change,
	// until ctx is done (CAPABILITY_WATCH_NODE). Return nil when ctx is done
	// or send fails.
	WatchNode(ctx context.Context, req *v1.WatchNodeRequest, send func(*v1.NodeStatus) error) error

	// CreatePod accepts a pod and returns without waiting for it to run;
	// a UID the provider already has is success and changes nothing. The SDK
	// has already refused an empty UID or a pod without containers.
	CreatePod(ctx context.Context, pod *v1.Pod) error
	// UpdatePod applies what may change on a running pod (CAPABILITY_UPDATE_POD);
	// ErrNotFound for an unknown UID.
	UpdatePod(ctx context.Context, pod *v1.Pod) error
	// DeletePod starts termination and returns; an unknown UID is success.
	// gracePeriodSeconds is nil when the host did not set it (use the pod's
	// own), 0 for "kill now".
	DeletePod(ctx context.Context, ref *v1.PodRef, gracePeriodSeconds *int64) error
	// GetPodStatus returns one pod's whole status, ErrNotFound when unknown.
	GetPodStatus(ctx context.Context, ref *v1.PodRef) (*v1.PodStatus, error)
	// ListPods returns the status of every pod the provider has.
	ListPods(ctx context.Context) ([]*v1.PodStatus, error)

	// ContainerLogs writes log entries to out until done (CAPABILITY_CONTAINER_LOGS).
	// Without req.Follow return after the last entry; with it, return when
	// the container instance has terminated and its log is drained, or when
	// ctx is done. ErrNotFound for an unknown pod or container.
	ContainerLogs(ctx context.Context, req *v1.ContainerLogsRequest, out *LogWriter) error
	// Exec runs a command in a running container (CAPABILITY_EXEC) and
	// returns its exit status, which the SDK sends as the last frame. Return
	// an error only when the process could not be started for a reason in
	// spec.md §7 (ErrNotFound, ErrFailedPrecondition); a command that cannot
	// run is an exit status of 126 or 127. Kill the process when ctx is done.
	Exec(ctx context.Context, start *v1.ExecStart, session ProcessSession) (*v1.ExitStatus, error)
	// Attach connects to a container's main process (CAPABILITY_ATTACH), with
	// Exec's contract; ctx done means the host detached, and the process must
	// keep running.
	Attach(ctx context.Context, start *v1.AttachStart, session ProcessSession) (*v1.ExitStatus, error)
	// PortForward relays one TCP connection to a port in the pod
	// (CAPABILITY_PORT_FORWARD). Report a connection that fails with
	// session.WriteError and return nil; return when the pod side closed and
	// its data was written, or when ctx is done.
	PortForward(ctx context.Context, start *v1.PortForwardStart, session PortForwardSession) error

	// GetStatsSummary returns node and pod usage (CAPABILITY_STATS).
	GetStatsSummary(ctx context.Context) (*v1.GetStatsSummaryResponse, error)
}

// PodStatusSource is implemented by providers that list
// CAPABILITY_WATCH_POD_STATUS: the SDK serves WatchPodStatus from the feed
// (a snapshot from ListPods, SYNCED, then what is published). Serve refuses
// to start a provider that lists the capability without implementing this.
type PodStatusSource interface {
	// PodStatusFeed returns the provider's feed; the same one every call.
	PodStatusFeed() *PodStatusFeed
}

// ProcessSession is one exec or attach session as seen by the provider.
// Stdin may be read by one goroutine while others write Stdout and Stderr;
// the writers are safe for concurrent use.
type ProcessSession interface {
	// Stdin yields what the client types; io.EOF once the client closed
	// stdin or the host ended its side.
	Stdin() io.Reader
	// Stdout and Stderr send output frames (split under 32 KiB). A write
	// fails once the host has gone away. With TTY, Stderr writes go to
	// stdout, as on a terminal.
	Stdout() io.Writer
	Stderr() io.Writer
	// TTY reports whether the client asked for a terminal.
	TTY() bool
	// Resize delivers terminal size changes (TTY only); the initial size, if
	// the client sent one, comes first. Closed when the session's input ends.
	Resize() <-chan *v1.TerminalSize
}

// PortForwardSession is one port-forward connection as seen by the provider.
// Read and Write may be used from two goroutines at once.
type PortForwardSession interface {
	// Read yields the client's bytes; io.EOF after close_write or when the
	// host ended its side.
	io.Reader
	// Write sends bytes to the client (split under 32 KiB).
	io.Writer
	// WriteError reports a failed connection to the client; return nil from
	// PortForward afterwards.
	WriteError(message string) error
}
