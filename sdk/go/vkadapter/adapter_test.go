package vkadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	sdk "github.com/vkhost/vkhost/sdk/go"
	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// The adapter's interfaces are virtual-kubelet's: every node interface value
// converts, and the optional methods have the signatures of node/api's
// handler functions. This fails to compile if virtual-kubelet changes them.
var (
	_ PodLifecycleHandler = node.PodLifecycleHandler(nil)
	_ PodNotifier         = node.PodNotifier(nil)
)

func _(l ContainerLogsGetter, r ContainerRunner, a ContainerAttacher, f PortForwarder, s StatsSummaryGetter, m MetricsResourceGetter) {
	var _ api.ContainerLogsHandlerFunc = l.GetContainerLogs
	var _ api.ContainerExecHandlerFunc = r.RunInContainer
	var _ api.ContainerAttachHandlerFunc = a.AttachToContainer
	var _ api.PortForwardHandlerFunc = f.PortForward
	var _ api.PodStatsSummaryHandlerFunc = s.GetStatsSummary
	var _ api.PodMetricsResourceHandlerFunc = m.GetMetricsResource
}

// fakeProvider is a virtual-kubelet provider in miniature: pods by
// namespace/name, all containers running at once, DeletePod forgets at once
// after notifying terminated states (as virtual-kubelet's mock provider
// does). RunInContainer upper-cases stdin to stdout and exits with
// len(cmd).
type fakeProvider struct {
	mu     sync.Mutex
	pods   map[string]*corev1.Pod
	notify func(*corev1.Pod)
}

func newFake() *fakeProvider {
	return &fakeProvider{pods: map[string]*corev1.Pod{}, notify: func(*corev1.Pod) {}}
}

func (f *fakeProvider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Reported in reverse order and without the last container: the adapter
	// must put them in spec order and fill in the missing one.
	for i := len(pod.Spec.Containers) - 2; i >= 0; i-- {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: pod.Spec.Containers[i].Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	pod.Status.Phase = corev1.PodRunning
	f.pods[pod.Namespace+"/"+pod.Name] = pod
	f.notify(pod.DeepCopy())
	return nil
}

func (f *fakeProvider) UpdatePod(context.Context, *corev1.Pod) error { return nil }

func (f *fakeProvider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.pods[pod.Namespace+"/"+pod.Name]
	if !ok {
		return errdefs.NotFound("no such pod")
	}
	for i := range stored.Status.ContainerStatuses {
		stored.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}
	}
	f.notify(stored.DeepCopy())
	delete(f.pods, pod.Namespace+"/"+pod.Name)
	return nil
}

func (f *fakeProvider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pod, ok := f.pods[namespace+"/"+name]; ok {
		return pod.DeepCopy(), nil
	}
	return nil, errdefs.NotFoundf("pod %s/%s not found", namespace, name)
}

func (f *fakeProvider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := f.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (f *fakeProvider) GetPods(context.Context) ([]*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*corev1.Pod
	for _, pod := range f.pods {
		out = append(out, pod.DeepCopy())
	}
	return out, nil
}

func (f *fakeProvider) NotifyPods(_ context.Context, notify func(*corev1.Pod)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notify = notify
}

func (f *fakeProvider) GetContainerLogs(_ context.Context, _, _, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(fmt.Sprintf("log of %s\ntail=%d\n", container, opts.Tail))), nil
}

type codeError int

func (c codeError) Error() string   { return fmt.Sprintf("exit %d", int(c)) }
func (c codeError) ExitStatus() int { return int(c) }

func (f *fakeProvider) RunInContainer(_ context.Context, _, _, _ string, cmd []string, attach api.AttachIO) error {
	data, _ := io.ReadAll(attach.Stdin())
	attach.Stdout().Write([]byte(strings.ToUpper(string(data))))
	return codeError(len(cmd))
}

// serve runs the adapter over the SDK on a unix socket and returns a
// connection to it; both stop at test end.
func serve(t *testing.T, provider PodLifecycleHandler) *grpc.ClientConn {
	t.Helper()
	adapter := New(provider, Options{Name: "fake", ForgetPollInterval: 20 * time.Millisecond})
	socket := filepath.Join(t.TempDir(), "a.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sdk.Serve(ctx, adapter, sdk.ServeOptions{Listen: "unix://" + socket}) }()
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
		adapter.Close()
	})
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPod(uid string, containers ...string) *v1.Pod {
	pod := &v1.Pod{Uid: uid, Namespace: "ns", Name: "pod-" + uid}
	for _, c := range containers {
		pod.Containers = append(pod.Containers, &v1.Container{Name: c, Image: "img", Command: []string{"run"}})
	}
	return pod
}

func TestLifecycleThroughGRPC(t *testing.T) {
	conn := serve(t, newFake())
	ctx := testContext(t)
	pods := v1.NewPodsClient(conn)
	watch, err := pods.WatchPodStatus(ctx, &v1.WatchPodStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := watch.Recv(); err != nil || e.Type != v1.WatchPodStatusResponse_TYPE_SYNCED {
		t.Fatalf("first event %v, %v; want SYNCED", e, err)
	}

	pod := newPod("u1", "a", "b", "c")
	for range 2 { // the second CreatePod is idempotent
		if _, err := pods.CreatePod(ctx, &v1.CreatePodRequest{Pod: pod}); err != nil {
			t.Fatalf("CreatePod: %v", err)
		}
	}
	got, err := pods.GetPodStatus(ctx, &v1.GetPodStatusRequest{Pod: &v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, cs := range got.Status.ContainerStatuses {
		state := "running"
		if cs.State.GetWaiting() != nil {
			state = cs.State.GetWaiting().Reason
		}
		states = append(states, cs.Name+"="+state)
	}
	if want := "a=running b=running c=ContainerCreating"; strings.Join(states, " ") != want {
		t.Errorf("container statuses %v, want %s", states, want)
	}
	if got.Status.Phase != v1.PodPhase_POD_PHASE_RUNNING {
		t.Errorf("phase %v, want RUNNING (passed through)", got.Status.Phase)
	}
	if e, err := watch.Recv(); err != nil || e.Status.GetPod().GetUid() != "u1" {
		t.Errorf("event after CreatePod %v, %v; want the pod's status from NotifyPods", e, err)
	}

	other := newPod("u2", "a")
	other.Name = "pod-u1" // same name, another UID
	_, err = pods.CreatePod(ctx, &v1.CreatePodRequest{Pod: other})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("CreatePod of a second pod with the same name: %v, want UNAVAILABLE", err)
	}
	_, err = pods.GetPodStatus(ctx, &v1.GetPodStatusRequest{Pod: &v1.PodRef{Uid: "u2", Namespace: "ns", Name: "pod-u1"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetPodStatus with the other UID: %v, want NOT_FOUND", err)
	}

	if _, err := pods.DeletePod(ctx, &v1.DeletePodRequest{Pod: &v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}}); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch ended before DELETED: %v", err)
		}
		if e.Type == v1.WatchPodStatusResponse_TYPE_DELETED && e.Status.Pod.Uid == "u1" {
			break
		}
	}
	_, err = pods.GetPodStatus(ctx, &v1.GetPodStatusRequest{Pod: &v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetPodStatus after deletion: %v, want NOT_FOUND", err)
	}
	if _, err := pods.DeletePod(ctx, &v1.DeletePodRequest{Pod: &v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}}); err != nil {
		t.Errorf("DeletePod of a forgotten pod: %v, want OK", err)
	}
}

func TestExecAndLogsThroughGRPC(t *testing.T) {
	conn := serve(t, newFake())
	ctx := testContext(t)
	if _, err := v1.NewPodsClient(conn).CreatePod(ctx, &v1.CreatePodRequest{Pod: newPod("u1", "main", "side")}); err != nil {
		t.Fatal(err)
	}
	ref := &v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}
	streams := v1.NewStreamsClient(conn)

	exec, err := streams.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec.Send(&v1.ExecRequest{Frame: &v1.ExecRequest_Start{Start: &v1.ExecStart{Pod: ref, Container: "main",
		Command: []string{"x", "y", "z"}, Stdin: true, Stdout: true}}})
	exec.Send(&v1.ExecRequest{Frame: &v1.ExecRequest_Stdin{Stdin: []byte("abc")}})
	exec.Send(&v1.ExecRequest{Frame: &v1.ExecRequest_CloseStdin{CloseStdin: true}})
	var out string
	var exit *v1.ExitStatus
	for {
		r, err := exec.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Exec: %v", err)
		}
		out += string(r.GetStdout())
		if r.GetExit() != nil {
			exit = r.GetExit()
		}
	}
	if out != "ABC" || exit.GetExitCode() != 3 {
		t.Errorf("exec stdout %q exit %v; want ABC and 3 (from ExitStatus())", out, exit)
	}

	logs, err := streams.ContainerLogs(ctx, &v1.ContainerLogsRequest{Pod: ref, Container: "main", TailLines: ptr(int64(5))})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for {
		r, err := logs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ContainerLogs: %v", err)
		}
		for _, e := range r.Entries {
			text += string(e.Line)
		}
	}
	if text != "log of main\ntail=5\n" {
		t.Errorf("logs %q", text)
	}
	missing, _ := streams.ContainerLogs(ctx, &v1.ContainerLogsRequest{Pod: ref, Container: "nope"})
	if _, err := missing.Recv(); status.Code(err) != codes.NotFound {
		t.Errorf("logs of an unknown container: %v, want NOT_FOUND", err)
	}
}

func ptr[T any](v T) *T { return &v }

// lifecycleOnly has nothing but the mandatory interface.
type lifecycleOnly struct{ PodLifecycleHandler }

func TestCapabilitiesFollowMethods(t *testing.T) {
	if got := New(lifecycleOnly{}, Options{}).Capabilities(); len(got) != 1 || got[0] != v1.Capability_CAPABILITY_UPDATE_POD {
		t.Errorf("lifecycle-only capabilities %v, want [UPDATE_POD]", got)
	}
	got := New(newFake(), Options{}).Capabilities()
	want := []v1.Capability{v1.Capability_CAPABILITY_WATCH_POD_STATUS, v1.Capability_CAPABILITY_UPDATE_POD,
		v1.Capability_CAPABILITY_CONTAINER_LOGS, v1.Capability_CAPABILITY_EXEC}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("capabilities %v, want %v", got, want)
	}
}

func TestPodJSONKeepsWhatTheMessageLacksAndTakesResolvedEnv(t *testing.T) {
	kube := corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name:           "main",
		Env:            []corev1.EnvVar{{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
	}}}}
	raw, _ := json.Marshal(kube)
	msg := newPod("u1", "main")
	msg.PodJson = raw
	msg.Labels = map[string]string{"new": "label"}
	msg.Containers[0].Env = []*v1.EnvVar{{Name: "FROM_CM", Value: "resolved"}}
	msg.Containers[0].Resources = &v1.ResourceRequirements{Limits: map[string]string{"cpu": "500m"}}
	msg.RestartPolicy = v1.RestartPolicy_RESTART_POLICY_NEVER

	pod, err := toKubePod(msg)
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Errorf("the probe from the pod JSON was lost")
	}
	if len(c.Env) != 1 || c.Env[0].Value != "resolved" || c.Env[0].ValueFrom != nil {
		t.Errorf("env %v, want the resolved value only", c.Env)
	}
	if q := c.Resources.Limits[corev1.ResourceCPU]; q.MilliValue() != 500 {
		t.Errorf("cpu limit %v, want 500m", q.String())
	}
	if pod.Labels["new"] != "label" || pod.UID != "u1" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("metadata or policy not taken from the message: %v %v %v", pod.Labels, pod.UID, pod.Spec.RestartPolicy)
	}

	msg.Containers[0].Resources.Limits["cpu"] = "lots"
	if _, err := toKubePod(msg); status.Code(sdk.StatusError(err)) != codes.InvalidArgument {
		t.Errorf("a bad quantity gave %v, want INVALID_ARGUMENT", err)
	}
}

func TestExitStatusFromProviderErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int32
	}{
		{nil, 0},
		{codeError(7), 7},
		{fmt.Errorf("wrapped: %w", codeError(2)), 2},
		{errors.New("no such file"), 126},
	} {
		if got := exitStatus(tc.err); got.ExitCode != tc.code {
			t.Errorf("exitStatus(%v) = %d, want %d", tc.err, got.ExitCode, tc.code)
		}
	}
	if msg := exitStatus(errors.New("boom")).Message; msg != "boom" {
		t.Errorf("message %q, want the error text", msg)
	}
}

type statsProvider struct{ lifecycleOnly }

func (statsProvider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	rss := uint64(4096)
	cpu := uint64(1e9)
	return &statsv1alpha1.Summary{Pods: []statsv1alpha1.PodStats{{
		PodRef:     statsv1alpha1.PodReference{Name: "p", Namespace: "ns", UID: "u"},
		Containers: []statsv1alpha1.ContainerStats{{Name: "c", Memory: &statsv1alpha1.MemoryStats{RSSBytes: &rss}}},
		CPU:        &statsv1alpha1.CPUStats{UsageCoreNanoSeconds: &cpu},
	}}}, nil
}

func TestStatsSummaryTranslation(t *testing.T) {
	a := New(statsProvider{}, Options{})
	if !slices.Contains(a.Capabilities(), v1.Capability_CAPABILITY_STATS) {
		t.Fatalf("capabilities %v lack STATS", a.Capabilities())
	}
	got, err := a.GetStatsSummary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pod := got.Pods[0]
	if pod.Pod.Uid != "u" || pod.Cpu.GetUsageCoreNanoSeconds() != 1e9 ||
		pod.Containers[0].Memory.GetRssBytes() != 4096 || pod.Containers[0].Cpu != nil {
		t.Errorf("translated %v", pod)
	}
}

// forwardingFake refuses every connection, as a backend whose port is closed.
type forwardingFake struct{ *fakeProvider }

func (forwardingFake) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errors.New("connection refused")
}

func TestPortForwardErrorsBecomeErrorFrames(t *testing.T) {
	conn := serve(t, forwardingFake{newFake()})
	ctx := testContext(t)
	if _, err := v1.NewPodsClient(conn).CreatePod(ctx, &v1.CreatePodRequest{Pod: newPod("u1", "main")}); err != nil {
		t.Fatal(err)
	}
	streams := v1.NewStreamsClient(conn)
	for _, tc := range []struct {
		ref       *v1.PodRef
		wantError string
		wantCode  codes.Code
	}{
		{&v1.PodRef{Uid: "u1", Namespace: "ns", Name: "pod-u1"}, "connection refused", codes.OK},
		{&v1.PodRef{Uid: "u9", Namespace: "ns", Name: "pod-u9"}, "", codes.NotFound},
	} {
		stream, err := streams.PortForward(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&v1.PortForwardRequest{Frame: &v1.PortForwardRequest_Start{Start: &v1.PortForwardStart{Pod: tc.ref, Port: 80}}})
		var gotError string
		for {
			r, err := stream.Recv()
			if err != nil {
				if err == io.EOF {
					err = nil // ended with OK
				}
				if status.Code(err) != tc.wantCode {
					t.Errorf("PortForward to %s ended with %v, want %v", tc.ref.Name, err, tc.wantCode)
				}
				break
			}
			gotError += r.GetError()
		}
		if gotError != tc.wantError {
			t.Errorf("error frame %q, want %q", gotError, tc.wantError)
		}
	}
}
