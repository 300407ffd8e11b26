package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// These tests drive ShellProvider the way virtual-kubelet's pod controller
// would, with real processes.

func newTestProvider(t *testing.T) *ShellProvider {
	p := NewShellProvider(t.TempDir())
	t.Cleanup(p.Close)
	return p
}

func testPod(name string, policy corev1.RestartPolicy, commands ...[]string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "uid-" + types.UID(name)},
		Spec: corev1.PodSpec{RestartPolicy: policy}}
	for i, cmd := range commands {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: "c" + string(rune('0'+i)), Command: cmd, Env: []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}})
	}
	return pod
}

// waitFor polls GetPod until cond holds, failing after 20 s.
func waitFor(t *testing.T, p *ShellProvider, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pod, err := p.GetPod(context.Background(), "ns", name)
		if err == nil && cond(pod) {
			return pod
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s never %s; last: %+v, %v", name, what, pod, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logsOf reads a container's log with opts to its end.
func logsOf(t *testing.T, p *ShellProvider, pod string, opts api.ContainerLogOpts) string {
	t.Helper()
	rc, err := p.GetContainerLogs(context.Background(), "ns", pod, "c0", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPodRunsToSucceededWithLogsAndNotifications(t *testing.T) {
	p := newTestProvider(t)
	notified := make(chan corev1.PodPhase, 100)
	p.NotifyPods(context.Background(), func(pod *corev1.Pod) { notified <- pod.Status.Phase })
	ctx := context.Background()
	pod := testPod("ok", corev1.RestartPolicyNever, []string{"sh", "-c", "echo $GREETING; echo two; echo err >&2"})
	if err := p.CreatePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	done := waitFor(t, p, "ok", "Succeeded", func(pod *corev1.Pod) bool { return pod.Status.Phase == corev1.PodSucceeded })
	if term := done.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("container state %+v, want terminated with 0", done.Status.ContainerStatuses[0].State)
	}
	logs := logsOf(t, p, "ok", api.ContainerLogOpts{})
	if !strings.Contains(logs, "hi\n") || !strings.Contains(logs, "two\n") || !strings.Contains(logs, "err\n") {
		t.Errorf("logs %q, want stdout and stderr lines", logs)
	}
	if tail := logsOf(t, p, "ok", api.ContainerLogOpts{Tail: 1}); strings.Count(tail, "\n") != 1 {
		t.Errorf("tail=1 gave %q", tail)
	}
	// Follow of a terminated container ends by itself.
	if follow := logsOf(t, p, "ok", api.ContainerLogOpts{Follow: true}); follow != logs {
		t.Errorf("followed log %q, want %q", follow, logs)
	}
	var phases []corev1.PodPhase
	for len(notified) > 0 {
		phases = append(phases, <-notified)
	}
	if len(phases) == 0 || phases[0] != corev1.PodPending || phases[len(phases)-1] != corev1.PodSucceeded {
		t.Errorf("notified phases %v, want Pending first and Succeeded last", phases)
	}
}

func TestFailingContainerWithNeverFailsThePod(t *testing.T) {
	p := newTestProvider(t)
	if err := p.CreatePod(context.Background(), testPod("bad", corev1.RestartPolicyNever, []string{"sh", "-c", "exit 4"})); err != nil {
		t.Fatal(err)
	}
	pod := waitFor(t, p, "bad", "Failed", func(pod *corev1.Pod) bool { return pod.Status.Phase == corev1.PodFailed })
	if code := pod.Status.ContainerStatuses[0].State.Terminated.ExitCode; code != 4 {
		t.Errorf("exit code %d, want 4", code)
	}
}

func TestRestartPolicyAlwaysRestartsAndKeepsPreviousLog(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	if err := p.CreatePod(ctx, testPod("loop", corev1.RestartPolicyAlways, []string{"sh", "-c", "echo run; exit 1"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "loop", "restarted", func(pod *corev1.Pod) bool {
		return pod.Status.ContainerStatuses[0].RestartCount >= 1 && pod.Status.Phase == corev1.PodRunning
	})
	waitFor(t, p, "loop", "running again", func(pod *corev1.Pod) bool {
		return pod.Status.ContainerStatuses[0].State.Running != nil || pod.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if prev := logsOf(t, p, "loop", api.ContainerLogOpts{Previous: true}); prev != "run\n" {
		t.Errorf("previous log %q, want \"run\\n\"", prev)
	}
}

func TestDeleteStopsProcessesThenForgets(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	pod := testPod("sleeper", corev1.RestartPolicyAlways, []string{"sleep", "3600"}, []string{"sleep", "3600"})
	if err := p.CreatePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "sleeper", "Running", func(pod *corev1.Pod) bool { return pod.Status.Phase == corev1.PodRunning })
	notified := make(chan *corev1.Pod, 100)
	p.NotifyPods(ctx, func(pod *corev1.Pod) { notified <- pod })
	grace := int64(1)
	pod.DeletionGracePeriodSeconds = &grace
	if err := p.DeletePod(ctx, pod); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := p.GetPod(ctx, "ns", "sleeper")
		if errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod still known 20 s after DeletePod: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var last *corev1.Pod
	for len(notified) > 0 {
		last = <-notified
	}
	for _, cs := range last.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			t.Errorf("last notified state of %s is %+v, want terminated", cs.Name, cs.State)
		}
	}
	if err := p.DeletePod(ctx, pod); !errdefs.IsNotFound(err) {
		t.Errorf("second DeletePod: %v, want not-found", err)
	}
}

func TestRunInContainerExitCodesAndStdin(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	if err := p.CreatePod(ctx, testPod("exec", corev1.RestartPolicyAlways, []string{"sleep", "3600"})); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	io := &testAttach{stdin: strings.NewReader("from stdin"), stdout: &out}
	if err := p.RunInContainer(ctx, "ns", "exec", "c0", []string{"cat"}, io); err != nil {
		t.Errorf("cat: %v", err)
	}
	if out.String() != "from stdin" {
		t.Errorf("cat printed %q", out.String())
	}
	var exitErr *exitError
	err := p.RunInContainer(ctx, "ns", "exec", "c0", []string{"sh", "-c", "exit 3"}, &testAttach{})
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
		t.Errorf("exit 3 gave %v", err)
	}
	err = p.RunInContainer(ctx, "ns", "exec", "c0", []string{"no-such-command-vkshell"}, &testAttach{})
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 127 {
		t.Errorf("missing command gave %v, want exit 127", err)
	}
	if err := p.RunInContainer(ctx, "ns", "exec", "nope", []string{"true"}, &testAttach{}); !errdefs.IsNotFound(err) {
		t.Errorf("unknown container gave %v, want not-found", err)
	}
}

func TestCreatePodWithoutCommandIsInvalid(t *testing.T) {
	p := newTestProvider(t)
	err := p.CreatePod(context.Background(), testPod("nocmd", corev1.RestartPolicyNever, nil))
	if !errdefs.IsInvalidInput(err) {
		t.Errorf("CreatePod without a command: %v, want invalid input", err)
	}
}

// testAttach is an api.AttachIO over plain readers and writers.
type testAttach struct {
	stdin  io.Reader
	stdout io.Writer
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

func (a *testAttach) Stdin() io.Reader { return a.stdin }
func (a *testAttach) Stdout() io.WriteCloser {
	if a.stdout == nil {
		return nopWriteCloser{io.Discard}
	}
	return nopWriteCloser{a.stdout}
}
func (a *testAttach) Stderr() io.WriteCloser      { return nil }
func (a *testAttach) TTY() bool                   { return false }
func (a *testAttach) Resize() <-chan api.TermSize { return nil }

func TestStatsSummarySamplesRunningProcesses(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	if err := p.CreatePod(ctx, testPod("busy", corev1.RestartPolicyAlways, []string{"sleep", "3600"})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, "busy", "Running", func(pod *corev1.Pod) bool { return pod.Status.Phase == corev1.PodRunning })
	summary, err := p.GetStatsSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(summary.Pods) != 1 || len(summary.Pods[0].Containers) != 1 {
		t.Fatalf("summary pods %+v, want one pod with one container", summary.Pods)
	}
	c := summary.Pods[0].Containers[0]
	if c.Name != "c0" || c.Memory == nil || c.Memory.RSSBytes == nil || *c.Memory.RSSBytes == 0 {
		t.Errorf("container stats %+v, want c0 with a resident size", c)
	}
	if summary.Node.Memory == nil || summary.Node.Memory.AvailableBytes == nil {
		t.Errorf("node memory missing")
	}
}
