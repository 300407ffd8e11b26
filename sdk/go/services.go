package sdk

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// services is the gRPC face of a Provider: the v1 Identity, Node, Pods,
// Streams and Stats servers. Besides translating calls and errors they
// enforce the rules every plugin shares, so providers need not: capability
// gating (UNIMPLEMENTED for an RPC whose capability is not listed), the
// WatchPodStatus snapshot/SYNCED/changes sequence, the start-first rule and
// final exit frame of Exec and Attach, the start-first rule of PortForward,
// and the empty-UID checks of spec.md §7.
//
// Safe for concurrent use once registered. beginShutdown cancels the
// contexts of open streams so they end before the server stops.
type services struct {
	provider Provider
	caps     capabilitySet
	feed     *PodStatusFeed // nil without CAPABILITY_WATCH_POD_STATUS

	shutdown context.Context
	cancel   context.CancelFunc
}

func newServices(provider Provider) (*services, error) {
	s := &services{provider: provider, caps: capabilitySet{}}
	for _, c := range provider.Capabilities() {
		s.caps[c] = true
	}
	if s.caps.has(v1.Capability_CAPABILITY_WATCH_POD_STATUS) {
		source, ok := provider.(PodStatusSource)
		if !ok || source.PodStatusFeed() == nil {
			return nil, fmt.Errorf("the provider lists CAPABILITY_WATCH_POD_STATUS but does not "+
				"implement sdk.PodStatusSource (PodStatusFeed() *sdk.PodStatusFeed): %w", ErrInvalidArgument)
		}
		s.feed = source.PodStatusFeed()
	}
	s.shutdown, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func (s *services) register(server grpc.ServiceRegistrar) {
	v1.RegisterIdentityServer(server, identityServer{s: s})
	v1.RegisterNodeServer(server, nodeServer{s: s})
	v1.RegisterPodsServer(server, podsServer{s: s})
	v1.RegisterStreamsServer(server, streamsServer{s: s})
	v1.RegisterStatsServer(server, statsServer{s: s})
}

func (s *services) beginShutdown() { s.cancel() }

// streamContext is a stream's context that is also done on shutdown.
func (s *services) streamContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(s.shutdown, cancel)
	return ctx, func() { stop(); cancel() }
}

// gate is the UNIMPLEMENTED answer for an RPC whose capability is not
// listed, or nil when it is.
func (s *services) gate(capability v1.Capability, rpc string) error {
	if s.caps.has(capability) {
		return nil
	}
	return status.Errorf(codes.Unimplemented, "%s is not available: the plugin does not list %s",
		rpc, capability)
}

// orEmpty maps a provider's answer to a handler's: the error through
// StatusError, and a nil message (which gRPC cannot send) to an empty one.
func orEmpty[M any, P interface {
	*M
	proto.Message
}](response P, err error) (P, error) {
	if err != nil {
		return nil, StatusError(err)
	}
	if response == nil {
		response = new(M)
	}
	return response, nil
}

func invalidArgument(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// ------------------------------------------------------------------ Identity

type identityServer struct {
	v1.UnimplementedIdentityServer
	s *services
}

func (i identityServer) GetPluginInfo(ctx context.Context, _ *v1.GetPluginInfoRequest) (*v1.GetPluginInfoResponse, error) {
	return orEmpty(i.s.provider.PluginInfo(ctx), nil)
}

func (i identityServer) GetCapabilities(context.Context, *v1.GetCapabilitiesRequest) (*v1.GetCapabilitiesResponse, error) {
	response := &v1.GetCapabilitiesResponse{}
	for c := range i.s.caps {
		response.Capabilities = append(response.Capabilities, c)
	}
	slices.Sort(response.Capabilities)
	return response, nil
}

func (i identityServer) Probe(ctx context.Context, _ *v1.ProbeRequest) (*v1.ProbeResponse, error) {
	return orEmpty(i.s.provider.Probe(ctx))
}

// ---------------------------------------------------------------------- Node

type nodeServer struct {
	v1.UnimplementedNodeServer
	s *services
}

func (n nodeServer) GetNode(ctx context.Context, req *v1.GetNodeRequest) (*v1.NodeStatus, error) {
	if err := n.s.gate(v1.Capability_CAPABILITY_NODE_INFO, "Node.GetNode"); err != nil {
		return nil, err
	}
	return orEmpty(n.s.provider.GetNode(ctx, req))
}

func (n nodeServer) WatchNode(req *v1.WatchNodeRequest, stream grpc.ServerStreamingServer[v1.NodeStatus]) error {
	if err := n.s.gate(v1.Capability_CAPABILITY_WATCH_NODE, "Node.WatchNode"); err != nil {
		return err
	}
	ctx, cancel := n.s.streamContext(stream.Context())
	defer cancel()
	return StatusError(n.s.provider.WatchNode(ctx, req, stream.Send))
}

// ---------------------------------------------------------------------- Pods

type podsServer struct {
	v1.UnimplementedPodsServer
	s *services
}

func (p podsServer) CreatePod(ctx context.Context, req *v1.CreatePodRequest) (*v1.CreatePodResponse, error) {
	pod := req.GetPod()
	if pod.GetUid() == "" {
		return nil, invalidArgument("CreatePod: the pod has no uid")
	}
	if len(pod.GetContainers()) == 0 {
		return nil, invalidArgument("CreatePod: pod %s/%s has no containers", pod.GetNamespace(), pod.GetName())
	}
	return &v1.CreatePodResponse{}, StatusError(p.s.provider.CreatePod(ctx, pod))
}

func (p podsServer) UpdatePod(ctx context.Context, req *v1.UpdatePodRequest) (*v1.UpdatePodResponse, error) {
	if err := p.s.gate(v1.Capability_CAPABILITY_UPDATE_POD, "Pods.UpdatePod"); err != nil {
		return nil, err
	}
	if req.GetPod().GetUid() == "" {
		return nil, invalidArgument("UpdatePod: the pod has no uid")
	}
	return &v1.UpdatePodResponse{}, StatusError(p.s.provider.UpdatePod(ctx, req.GetPod()))
}

func (p podsServer) DeletePod(ctx context.Context, req *v1.DeletePodRequest) (*v1.DeletePodResponse, error) {
	if req.GetPod().GetUid() == "" {
		return nil, invalidArgument("DeletePod: the pod reference has no uid")
	}
	return &v1.DeletePodResponse{}, StatusError(p.s.provider.DeletePod(ctx, req.GetPod(), req.GracePeriodSeconds))
}

func (p podsServer) GetPodStatus(ctx context.Context, req *v1.GetPodStatusRequest) (*v1.GetPodStatusResponse, error) {
	st, err := p.s.provider.GetPodStatus(ctx, req.GetPod())
	if err != nil {
		return nil, StatusError(err)
	}
	return &v1.GetPodStatusResponse{Status: st}, nil
}

func (p podsServer) ListPods(ctx context.Context, _ *v1.ListPodsRequest) (*v1.ListPodsResponse, error) {
	pods, err := p.s.provider.ListPods(ctx)
	if err != nil {
		return nil, StatusError(err)
	}
	return &v1.ListPodsResponse{Pods: pods}, nil
}

// WatchPodStatus subscribes before listing, so a change racing with the
// snapshot arrives after SYNCED rather than being lost; a status identical to
// the last one sent for that pod is skipped.
func (p podsServer) WatchPodStatus(_ *v1.WatchPodStatusRequest, stream grpc.ServerStreamingServer[v1.WatchPodStatusResponse]) error {
	if err := p.s.gate(v1.Capability_CAPABILITY_WATCH_POD_STATUS, "Pods.WatchPodStatus"); err != nil {
		return err
	}
	ctx, cancel := p.s.streamContext(stream.Context())
	defer cancel()
	sub := p.s.feed.Subscribe()
	defer sub.Close()
	snapshot, err := p.s.provider.ListPods(ctx)
	if err != nil {
		return StatusError(err)
	}
	lastSent := map[string]*v1.PodStatus{}
	for _, st := range snapshot {
		lastSent[st.GetPod().GetUid()] = st
		if err := stream.Send(&v1.WatchPodStatusResponse{Type: v1.WatchPodStatusResponse_TYPE_STATUS, Status: st}); err != nil {
			return nil
		}
	}
	if err := stream.Send(&v1.WatchPodStatusResponse{Type: v1.WatchPodStatusResponse_TYPE_SYNCED}); err != nil {
		return nil
	}
	for {
		event, err := sub.Next(ctx)
		if err != nil {
			return nil // cancelled by the host or shutting down: end with OK
		}
		uid := event.GetStatus().GetPod().GetUid()
		if event.Type == v1.WatchPodStatusResponse_TYPE_STATUS {
			if last, ok := lastSent[uid]; ok && proto.Equal(last, event.Status) {
				continue
			}
			lastSent[uid] = event.Status
		} else {
			delete(lastSent, uid)
		}
		if err := stream.Send(event); err != nil {
			return nil
		}
	}
}

// --------------------------------------------------------------------- Stats

type statsServer struct {
	v1.UnimplementedStatsServer
	s *services
}

func (st statsServer) GetStatsSummary(ctx context.Context, _ *v1.GetStatsSummaryRequest) (*v1.GetStatsSummaryResponse, error) {
	if err := st.s.gate(v1.Capability_CAPABILITY_STATS, "Stats.GetStatsSummary"); err != nil {
		return nil, err
	}
	return orEmpty(st.s.provider.GetStatsSummary(ctx))
}

// ------------------------------------------------------------------- Streams

type streamsServer struct {
	v1.UnimplementedStreamsServer
	s *services
}

func (st streamsServer) ContainerLogs(req *v1.ContainerLogsRequest, stream grpc.ServerStreamingServer[v1.ContainerLogsResponse]) error {
	if err := st.s.gate(v1.Capability_CAPABILITY_CONTAINER_LOGS, "Streams.ContainerLogs"); err != nil {
		return err
	}
	if req.GetPrevious() {
		if err := st.s.gate(v1.Capability_CAPABILITY_CONTAINER_LOGS_PREVIOUS, "Streams.ContainerLogs with previous"); err != nil {
			return err
		}
	}
	ctx, cancel := st.s.streamContext(stream.Context())
	defer cancel()
	return StatusError(st.s.provider.ContainerLogs(ctx, req, NewLogWriter(stream.Send)))
}

func (st streamsServer) Exec(stream grpc.BidiStreamingServer[v1.ExecRequest, v1.ExecResponse]) error {
	if err := st.s.gate(v1.Capability_CAPABILITY_EXEC, "Streams.Exec"); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil // the host went away before saying what to run
	}
	start := first.GetStart()
	if start == nil {
		return invalidArgument("Exec: the first request frame must be `start`")
	}
	recv := func() (processInput, error) {
		r, err := stream.Recv()
		return execInput(r), err
	}
	return st.runProcess(stream.Context(), start.GetTty(), start.GetTerminalSize(), stream.Send, recv,
		func(ctx context.Context, session ProcessSession) (*v1.ExitStatus, error) {
			return st.s.provider.Exec(ctx, start, session)
		})
}

func (st streamsServer) Attach(stream grpc.BidiStreamingServer[v1.AttachRequest, v1.ExecResponse]) error {
	if err := st.s.gate(v1.Capability_CAPABILITY_ATTACH, "Streams.Attach"); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil
	}
	start := first.GetStart()
	if start == nil {
		return invalidArgument("Attach: the first request frame must be `start`")
	}
	recv := func() (processInput, error) {
		r, err := stream.Recv()
		return attachInput(r), err
	}
	return st.runProcess(stream.Context(), start.GetTty(), start.GetTerminalSize(), stream.Send, recv,
		func(ctx context.Context, session ProcessSession) (*v1.ExitStatus, error) {
			return st.s.provider.Attach(ctx, start, session)
		})
}

// runProcess runs an Exec or Attach session: input pumped from recv, the
// provider's run, then its exit status as the one last frame.
func (st streamsServer) runProcess(parent context.Context, tty bool, size *v1.TerminalSize,
	send func(*v1.ExecResponse) error, recv func() (processInput, error),
	run func(context.Context, ProcessSession) (*v1.ExitStatus, error)) error {
	ctx, cancel := st.s.streamContext(parent)
	defer cancel()
	session := newProcessSession(tty, size, send)
	defer session.close()
	go session.pump(recv)
	exit, err := run(ctx, session)
	if err != nil {
		return StatusError(err)
	}
	if exit == nil {
		exit = &v1.ExitStatus{}
	}
	_ = session.sendFrame(&v1.ExecResponse{Frame: &v1.ExecResponse_Exit{Exit: exit}})
	return nil
}

func (st streamsServer) PortForward(stream grpc.BidiStreamingServer[v1.PortForwardRequest, v1.PortForwardResponse]) error {
	if err := st.s.gate(v1.Capability_CAPABILITY_PORT_FORWARD, "Streams.PortForward"); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil
	}
	start := first.GetStart()
	if start == nil {
		return invalidArgument("PortForward: the first request frame must be `start`")
	}
	ctx, cancel := st.s.streamContext(stream.Context())
	defer cancel()
	session := newPortForwardSession(stream.Send)
	defer session.close()
	go session.pump(stream.Recv)
	return StatusError(st.s.provider.PortForward(ctx, start, session))
}
