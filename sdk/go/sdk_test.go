package sdk

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// testProvider is an in-memory provider for the SDK's tests. Exec copies
// stdin to stdout (upper-cased) and exits with the number of argv words;
// PortForward echoes; ContainerLogs serves two fixed lines.
type testProvider struct {
	UnimplementedProvider
	caps []v1.Capability
	feed PodStatusFeed

	mu   sync.Mutex
	pods map[string]*v1.PodStatus
}

func newTestProvider(caps ...v1.Capability) *testProvider {
	return &testProvider{caps: caps, pods: map[string]*v1.PodStatus{}}
}

func (p *testProvider) PluginInfo(context.Context) *v1.GetPluginInfoResponse {
	return &v1.GetPluginInfoResponse{Name: "sdk-test", Version: "0"}
}
func (p *testProvider) Capabilities() []v1.Capability { return p.caps }
func (p *testProvider) PodStatusFeed() *PodStatusFeed { return &p.feed }

func (p *testProvider) CreatePod(_ context.Context, pod *v1.Pod) error {
	st := &v1.PodStatus{Pod: &v1.PodRef{Uid: pod.Uid, Namespace: pod.Namespace, Name: pod.Name}}
	p.mu.Lock()
	p.pods[pod.Uid] = st
	p.mu.Unlock()
	p.feed.Publish(st)
	return nil
}

func (p *testProvider) DeletePod(_ context.Context, ref *v1.PodRef, _ *int64) error {
	p.mu.Lock()
	delete(p.pods, ref.Uid)
	p.mu.Unlock()
	p.feed.PublishDeleted(ref)
	return nil
}

func (p *testProvider) GetPodStatus(_ context.Context, ref *v1.PodRef) (*v1.PodStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.pods[ref.Uid]; ok {
		return st, nil
	}
	return nil, fmt.Errorf("pod %s: %w", ref.Uid, ErrNotFound)
}

func (p *testProvider) ListPods(context.Context) ([]*v1.PodStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*v1.PodStatus
	for _, st := range p.pods {
		out = append(out, st)
	}
	return out, nil
}

func (p *testProvider) ContainerLogs(_ context.Context, req *v1.ContainerLogsRequest, out *LogWriter) error {
	if req.GetContainer() != "main" {
		return fmt.Errorf("container %q: %w", req.GetContainer(), ErrNotFound)
	}
	return out.CopyLines(strings.NewReader("first line\nsecond"), v1.LogEntry_STREAM_STDOUT)
}

func (p *testProvider) Exec(ctx context.Context, start *v1.ExecStart, s ProcessSession) (*v1.ExitStatus, error) {
	if start.GetPod().GetUid() == "unknown" {
		return nil, status.Error(codes.NotFound, "no such pod")
	}
	data, err := io.ReadAll(s.Stdin())
	if err != nil {
		return nil, err
	}
	fmt.Fprint(s.Stdout(), strings.ToUpper(string(data)))
	fmt.Fprint(s.Stderr(), "done")
	return &v1.ExitStatus{ExitCode: int32(len(start.GetCommand()))}, nil
}

// Attach reports the terminal sizes it receives until its input ends, then
// exits 0.
func (p *testProvider) Attach(ctx context.Context, start *v1.AttachStart, s ProcessSession) (*v1.ExitStatus, error) {
	for size := range s.Resize() {
		fmt.Fprintf(s.Stdout(), "%dx%d tty=%v;", size.Width, size.Height, s.TTY())
	}
	return &v1.ExitStatus{}, nil
}

func (p *testProvider) PortForward(ctx context.Context, start *v1.PortForwardStart, s PortForwardSession) error {
	if start.GetPort() == 1 {
		return s.WriteError("connection refused")
	}
	_, err := io.Copy(s, s)
	return err
}

var allCaps = []v1.Capability{
	v1.Capability_CAPABILITY_WATCH_POD_STATUS, v1.Capability_CAPABILITY_CONTAINER_LOGS,
	v1.Capability_CAPABILITY_EXEC, v1.Capability_CAPABILITY_PORT_FORWARD, v1.Capability_CAPABILITY_ATTACH,
}

// client is a connection to a provider served by Serve in connect mode on a
// unix socket in the test's temp dir. The server stops at test end.
type client struct {
	conn *grpc.ClientConn
}

func serveForTest(t *testing.T, p Provider) client {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "p.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, p, ServeOptions{Listen: "unix://" + socket, ignoreSignals: true,
			onListening: func(net.Addr) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve failed to start: %v", err)
	}
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after cancel, want nil", err)
		}
	})
	return client{conn}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

func TestUnlistedCapabilitiesAreUnimplemented(t *testing.T) {
	c := serveForTest(t, newTestProvider()) // lists nothing
	ctx := timeout(t)
	streams := v1.NewStreamsClient(c.conn)

	exec, err := streams.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec.Send(&v1.ExecRequest{Frame: &v1.ExecRequest_Start{Start: &v1.ExecStart{Command: []string{"x"}}}})
	_, err = exec.Recv()
	wantCode(t, "Exec without EXEC", err, codes.Unimplemented)

	watch, err := v1.NewPodsClient(c.conn).WatchPodStatus(ctx, &v1.WatchPodStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = watch.Recv()
	wantCode(t, "WatchPodStatus without WATCH_POD_STATUS", err, codes.Unimplemented)

	_, err = v1.NewStatsClient(c.conn).GetStatsSummary(ctx, &v1.GetStatsSummaryRequest{})
	wantCode(t, "GetStatsSummary without STATS", err, codes.Unimplemented)
	_, err = v1.NewPodsClient(c.conn).UpdatePod(ctx, &v1.UpdatePodRequest{Pod: &v1.Pod{Uid: "u"}})
	wantCode(t, "UpdatePod without UPDATE_POD", err, codes.Unimplemented)

	caps, err := v1.NewIdentityClient(c.conn).GetCapabilities(ctx, &v1.GetCapabilitiesRequest{})
	if err != nil || len(caps.Capabilities) != 0 {
		t.Errorf("GetCapabilities = %v, %v; want none", caps, err)
	}
}

func TestListedButUnimplementedMethodIsUnimplemented(t *testing.T) {
	// STATS is listed, but the provider keeps UnimplementedProvider's method.
	c := serveForTest(t, newTestProvider(v1.Capability_CAPABILITY_STATS))
	_, err := v1.NewStatsClient(c.conn).GetStatsSummary(timeout(t), &v1.GetStatsSummaryRequest{})
	wantCode(t, "GetStatsSummary", err, codes.Unimplemented)
	if !strings.Contains(status.Convert(err).Message(), "Stats.GetStatsSummary") {
		t.Errorf("message %q does not name the method", status.Convert(err).Message())
	}
}

func TestPodValidationAndErrorCodes(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	ctx := timeout(t)
	pods := v1.NewPodsClient(c.conn)
	_, err := pods.CreatePod(ctx, &v1.CreatePodRequest{Pod: &v1.Pod{Containers: []*v1.Container{{Name: "c"}}}})
	wantCode(t, "CreatePod without uid", err, codes.InvalidArgument)
	_, err = pods.CreatePod(ctx, &v1.CreatePodRequest{Pod: &v1.Pod{Uid: "u1"}})
	wantCode(t, "CreatePod without containers", err, codes.InvalidArgument)
	_, err = pods.DeletePod(ctx, &v1.DeletePodRequest{Pod: &v1.PodRef{}})
	wantCode(t, "DeletePod without uid", err, codes.InvalidArgument)
	_, err = pods.GetPodStatus(ctx, &v1.GetPodStatusRequest{Pod: &v1.PodRef{Uid: "nope"}})
	wantCode(t, "GetPodStatus of an unknown pod (sdk.ErrNotFound)", err, codes.NotFound)

	health, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || health.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check = %v, %v; want SERVING", health, err)
	}
	probe, err := v1.NewIdentityClient(c.conn).Probe(ctx, &v1.ProbeRequest{})
	if err != nil || !probe.Ready {
		t.Errorf("Probe = %v, %v; want ready", probe, err)
	}
}

func TestStatusErrorMapping(t *testing.T) {
	cases := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("pod x: %w", ErrNotFound), codes.NotFound},
		{fmt.Errorf("full: %w", ErrResourceExhausted), codes.ResourceExhausted},
		{fmt.Errorf("wrapped: %w", status.Error(codes.Aborted, "a")), codes.Aborted},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{io.ErrUnexpectedEOF, codes.Unknown},
		{nil, codes.OK},
	}
	for _, tc := range cases {
		if got := status.Code(StatusError(tc.err)); got != tc.want {
			t.Errorf("StatusError(%v) has code %v, want %v", tc.err, got, tc.want)
		}
	}
	if msg := status.Convert(StatusError(fmt.Errorf("pod x: %w", ErrNotFound))).Message(); msg != "pod x: not found" {
		t.Errorf("message %q, want the whole error text", msg)
	}
}

func TestWatchPodStatusSnapshotSyncedChanges(t *testing.T) {
	p := newTestProvider(allCaps...)
	c := serveForTest(t, p)
	ctx := timeout(t)
	pods := v1.NewPodsClient(c.conn)
	mkPod := func(uid string) *v1.CreatePodRequest {
		return &v1.CreatePodRequest{Pod: &v1.Pod{Uid: uid, Containers: []*v1.Container{{Name: "c"}}}}
	}
	if _, err := pods.CreatePod(ctx, mkPod("before")); err != nil {
		t.Fatal(err)
	}
	watch, err := pods.WatchPodStatus(ctx, &v1.WatchPodStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *v1.WatchPodStatusResponse {
		t.Helper()
		event, err := watch.Recv()
		if err != nil {
			t.Fatalf("WatchPodStatus ended: %v", err)
		}
		return event
	}
	if e := next(); e.Type != v1.WatchPodStatusResponse_TYPE_STATUS || e.Status.Pod.Uid != "before" {
		t.Fatalf("first event %v, want STATUS of pod before", e)
	}
	if e := next(); e.Type != v1.WatchPodStatusResponse_TYPE_SYNCED {
		t.Fatalf("second event %v, want SYNCED", e)
	}
	if _, err := pods.CreatePod(ctx, mkPod("after")); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != v1.WatchPodStatusResponse_TYPE_STATUS || e.Status.Pod.Uid != "after" {
		t.Fatalf("event after CreatePod %v, want STATUS of pod after", e)
	}
	if _, err := pods.DeletePod(ctx, &v1.DeletePodRequest{Pod: &v1.PodRef{Uid: "after"}}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Type != v1.WatchPodStatusResponse_TYPE_DELETED || e.Status.Pod.Uid != "after" {
		t.Fatalf("event after DeletePod %v, want DELETED of pod after", e)
	}
}

func TestExecStdinOutputAndExitFrame(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	stream, err := v1.NewStreamsClient(c.conn).Exec(timeout(t))
	if err != nil {
		t.Fatal(err)
	}
	frames := []*v1.ExecRequest{
		{Frame: &v1.ExecRequest_Start{Start: &v1.ExecStart{Pod: &v1.PodRef{Uid: "p"}, Command: []string{"a", "b"}, Stdin: true}}},
		{Frame: &v1.ExecRequest_Stdin{Stdin: []byte("hello ")}},
		{Frame: &v1.ExecRequest_Stdin{Stdin: []byte("world")}},
		{Frame: &v1.ExecRequest_CloseStdin{CloseStdin: true}},
	}
	for _, f := range frames {
		if err := stream.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr string
	var exits []*v1.ExitStatus
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Exec ended with %v, want OK", err)
		}
		if len(exits) > 0 {
			t.Errorf("frame %v after the exit frame", r)
		}
		stdout += string(r.GetStdout())
		stderr += string(r.GetStderr())
		if r.GetExit() != nil {
			exits = append(exits, r.GetExit())
		}
	}
	if stdout != "HELLO WORLD" || stderr != "done" {
		t.Errorf("stdout %q stderr %q, want \"HELLO WORLD\" and \"done\"", stdout, stderr)
	}
	if len(exits) != 1 || exits[0].ExitCode != 2 {
		t.Errorf("exit frames %v, want one with code 2", exits)
	}
}

func TestAttachDeliversInitialSizeAndResizes(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	stream, err := v1.NewStreamsClient(c.conn).Attach(timeout(t))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&v1.AttachRequest{Frame: &v1.AttachRequest_Start{Start: &v1.AttachStart{
		Pod: &v1.PodRef{Uid: "p"}, Tty: true, Stdout: true, TerminalSize: &v1.TerminalSize{Width: 80, Height: 24}}}})
	stream.Send(&v1.AttachRequest{Frame: &v1.AttachRequest_Resize{Resize: &v1.TerminalSize{Width: 120, Height: 40}}})
	stream.CloseSend() // ends the session's input: Resize() closes
	var out string
	exits := 0
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Attach ended with %v", err)
		}
		out += string(r.GetStdout())
		if r.GetExit() != nil {
			exits++
		}
	}
	if out != "80x24 tty=true;120x40 tty=true;" || exits != 1 {
		t.Errorf("stdout %q and %d exit frames; want both sizes in order and one exit frame", out, exits)
	}
}

func TestExecFirstFrameMustBeStartAndErrorsPassThrough(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	streams := v1.NewStreamsClient(c.conn)
	ctx := timeout(t)
	for _, tc := range []struct {
		first *v1.ExecRequest
		want  codes.Code
	}{
		{&v1.ExecRequest{Frame: &v1.ExecRequest_Stdin{Stdin: []byte("x")}}, codes.InvalidArgument},
		{&v1.ExecRequest{Frame: &v1.ExecRequest_Start{Start: &v1.ExecStart{Pod: &v1.PodRef{Uid: "unknown"}}}}, codes.NotFound},
	} {
		stream, err := streams.Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(tc.first)
		for err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, fmt.Sprintf("Exec starting with %v", tc.first), err, tc.want)
	}
}

func TestPortForwardEchoAndErrorFrame(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	streams := v1.NewStreamsClient(c.conn)
	ctx := timeout(t)

	stream, err := streams.PortForward(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&v1.PortForwardRequest{Frame: &v1.PortForwardRequest_Start{Start: &v1.PortForwardStart{Port: 80}}})
	stream.Send(&v1.PortForwardRequest{Frame: &v1.PortForwardRequest_Data{Data: []byte("ping")}})
	stream.Send(&v1.PortForwardRequest{Frame: &v1.PortForwardRequest_CloseWrite{CloseWrite: true}})
	var echoed string
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("PortForward ended with %v, want OK", err)
		}
		echoed += string(r.GetData())
	}
	if echoed != "ping" {
		t.Errorf("echoed %q, want ping", echoed)
	}

	refused, err := streams.PortForward(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refused.Send(&v1.PortForwardRequest{Frame: &v1.PortForwardRequest_Start{Start: &v1.PortForwardStart{Port: 1}}})
	r, err := refused.Recv()
	if err != nil || r.GetError() != "connection refused" {
		t.Errorf("first frame %v, %v; want the error frame", r, err)
	}
}

func TestContainerLogsLinesAndNotFound(t *testing.T) {
	c := serveForTest(t, newTestProvider(allCaps...))
	streams := v1.NewStreamsClient(c.conn)
	ctx := timeout(t)
	logs, err := streams.ContainerLogs(ctx, &v1.ContainerLogsRequest{Container: "main"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for {
		r, err := logs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ContainerLogs ended with %v", err)
		}
		for _, e := range r.Entries {
			if e.Time == nil || e.Stream != v1.LogEntry_STREAM_STDOUT {
				t.Errorf("entry %v lacks time or stream", e)
			}
			lines = append(lines, string(e.Line))
		}
	}
	if strings.Join(lines, "|") != "first line\n|second" {
		t.Errorf("lines %q", lines)
	}
	missing, err := streams.ContainerLogs(ctx, &v1.ContainerLogsRequest{Container: "other"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = missing.Recv()
	wantCode(t, "ContainerLogs of an unknown container", err, codes.NotFound)
	previous, err := streams.ContainerLogs(ctx, &v1.ContainerLogsRequest{Container: "main", Previous: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = previous.Recv()
	wantCode(t, "ContainerLogs previous without CONTAINER_LOGS_PREVIOUS", err, codes.Unimplemented)
}

func TestServeRefusesWatchWithoutFeed(t *testing.T) {
	err := Serve(context.Background(), feedless{},
		ServeOptions{Listen: "unix://" + filepath.Join(t.TempDir(), "s"), ignoreSignals: true})
	if err == nil || !strings.Contains(err.Error(), "PodStatusSource") {
		t.Errorf("Serve = %v, want a refusal naming PodStatusSource", err)
	}
}

// feedless lists CAPABILITY_WATCH_POD_STATUS without a PodStatusFeed.
type feedless struct{ UnimplementedProvider }

func (feedless) PluginInfo(context.Context) *v1.GetPluginInfoResponse {
	return &v1.GetPluginInfoResponse{Name: "feedless"}
}
func (feedless) Capabilities() []v1.Capability {
	return []v1.Capability{v1.Capability_CAPABILITY_WATCH_POD_STATUS}
}
