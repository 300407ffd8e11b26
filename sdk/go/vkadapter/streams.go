package vkadapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"

	sdk "github.com/vkhost/vkhost/sdk/go"
	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// containerOf returns the provider's pod after checking that it has the
// container: ErrNotFound for an unknown pod or container.
func (a *Adapter) containerOf(ctx context.Context, ref *v1.PodRef, container string) (*corev1.Pod, error) {
	pod, err := a.providerPod(ctx, ref)
	if err != nil {
		return nil, err
	}
	spec := a.specOf(pod)
	for _, list := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range list {
			if c.Name == container {
				return pod, nil
			}
		}
	}
	return nil, fmt.Errorf("pod %s/%s has no container %q: %w", ref.GetNamespace(), ref.GetName(), container, sdk.ErrNotFound)
}

// ContainerLogs serves logs from the provider's GetContainerLogs. The
// provider's byte stream is split into lines stamped with the time they were
// read; every line is reported as stdout (virtual-kubelet's log interface
// does not separate the streams). The reader is closed when the host cancels.
func (a *Adapter) ContainerLogs(ctx context.Context, req *v1.ContainerLogsRequest, out *sdk.LogWriter) error {
	getter, ok := a.provider.(ContainerLogsGetter)
	if !ok {
		return a.UnimplementedProvider.ContainerLogs(ctx, req, out)
	}
	if _, err := a.containerOf(ctx, req.GetPod(), req.GetContainer()); err != nil {
		return err
	}
	opts := api.ContainerLogOpts{Follow: req.GetFollow(), Previous: req.GetPrevious()}
	if req.TailLines != nil {
		opts.Tail = int(req.GetTailLines())
	}
	if req.LimitBytes != nil {
		opts.LimitBytes = int(req.GetLimitBytes())
	}
	if req.GetSinceTime() != nil {
		opts.SinceTime = req.GetSinceTime().AsTime()
	}
	logs, err := getter.GetContainerLogs(ctx, req.GetPod().GetNamespace(), req.GetPod().GetName(), req.GetContainer(), opts)
	if err != nil {
		return fromProvider(err)
	}
	stop := context.AfterFunc(ctx, func() { logs.Close() })
	defer stop()
	defer logs.Close()
	if err := out.CopyLines(logs, v1.LogEntry_STREAM_STDOUT); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Exec runs the command with the provider's RunInContainer. The exit code
// comes from the returned error: nil is 0; an error with an ExitStatus() or
// ExitCode() method (k8s.io/utils/exec.CodeExitError, os/exec.ExitError)
// gives its code; any other error is exit 126 with the error as message,
// since the command could not be run (spec.md §6.2).
func (a *Adapter) Exec(ctx context.Context, start *v1.ExecStart, session sdk.ProcessSession) (*v1.ExitStatus, error) {
	runner, ok := a.provider.(ContainerRunner)
	if !ok {
		return a.UnimplementedProvider.Exec(ctx, start, session)
	}
	if err := a.checkRunning(ctx, start.GetPod(), start.GetContainer()); err != nil {
		return nil, err
	}
	attach := newAttachIO(ctx, session, start.GetStdin(), start.GetStdout(), start.GetStderr())
	err := runner.RunInContainer(ctx, start.GetPod().GetNamespace(), start.GetPod().GetName(),
		start.GetContainer(), start.GetCommand(), attach)
	return exitStatus(err), nil
}

// Attach attaches with the provider's AttachToContainer; exit statuses as
// for Exec.
func (a *Adapter) Attach(ctx context.Context, start *v1.AttachStart, session sdk.ProcessSession) (*v1.ExitStatus, error) {
	attacher, ok := a.provider.(ContainerAttacher)
	if !ok {
		return a.UnimplementedProvider.Attach(ctx, start, session)
	}
	if err := a.checkRunning(ctx, start.GetPod(), start.GetContainer()); err != nil {
		return nil, err
	}
	attach := newAttachIO(ctx, session, start.GetStdin(), start.GetStdout(), start.GetStderr())
	err := attacher.AttachToContainer(ctx, start.GetPod().GetNamespace(), start.GetPod().GetName(),
		start.GetContainer(), attach)
	return exitStatus(err), nil
}

// checkRunning: NOT_FOUND for an unknown pod or container,
// FAILED_PRECONDITION when the container has terminated for good.
func (a *Adapter) checkRunning(ctx context.Context, ref *v1.PodRef, container string) error {
	if _, err := a.containerOf(ctx, ref, container); err != nil {
		return err
	}
	st, err := a.GetPodStatus(ctx, ref)
	if err != nil {
		return err
	}
	for _, cs := range st.GetContainerStatuses() {
		if cs.GetName() == container && cs.GetState().GetTerminated() != nil {
			return fmt.Errorf("container %q of pod %s/%s has terminated: %w",
				container, ref.GetNamespace(), ref.GetName(), sdk.ErrFailedPrecondition)
		}
	}
	return nil
}

// exitStatus turns RunInContainer's error into the session's exit status.
func exitStatus(err error) *v1.ExitStatus {
	if err == nil {
		return &v1.ExitStatus{}
	}
	var withStatus interface{ ExitStatus() int }
	if errors.As(err, &withStatus) {
		return &v1.ExitStatus{ExitCode: int32(withStatus.ExitStatus())}
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return &v1.ExitStatus{ExitCode: int32(exitErr.ExitCode())}
	}
	return &v1.ExitStatus{ExitCode: 126, Message: err.Error()}
}

// attachIO is api.AttachIO over an SDK session. Streams the client did not
// open are nil, as virtual-kubelet providers expect; Close on an output
// stream is a no-op (the session ends when the provider returns).
type attachIO struct {
	stdin          io.Reader
	stdout, stderr io.WriteCloser
	tty            bool
	resize         chan api.TermSize
}

func newAttachIO(ctx context.Context, session sdk.ProcessSession, stdin, stdout, stderr bool) *attachIO {
	aio := &attachIO{tty: session.TTY(), resize: make(chan api.TermSize)}
	if stdin {
		aio.stdin = session.Stdin()
	}
	if stdout {
		aio.stdout = nopCloser{session.Stdout()}
	}
	if stderr && !session.TTY() {
		aio.stderr = nopCloser{session.Stderr()}
	}
	go func() {
		defer close(aio.resize)
		for size := range session.Resize() {
			select {
			case aio.resize <- api.TermSize{Width: uint16(size.GetWidth()), Height: uint16(size.GetHeight())}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return aio
}

func (a *attachIO) Stdin() io.Reader            { return a.stdin }
func (a *attachIO) Stdout() io.WriteCloser      { return a.stdout }
func (a *attachIO) Stderr() io.WriteCloser      { return a.stderr }
func (a *attachIO) TTY() bool                   { return a.tty }
func (a *attachIO) Resize() <-chan api.TermSize { return a.resize }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// PortForward relays through the provider's PortForward. A provider error
// other than not-found is a failed connection: reported as an error frame,
// then OK (spec.md §6.4).
func (a *Adapter) PortForward(ctx context.Context, start *v1.PortForwardStart, session sdk.PortForwardSession) error {
	forwarder, ok := a.provider.(PortForwarder)
	if !ok {
		return a.UnimplementedProvider.PortForward(ctx, start, session)
	}
	if _, err := a.providerPod(ctx, start.GetPod()); err != nil {
		return err
	}
	err := forwarder.PortForward(ctx, start.GetPod().GetNamespace(), start.GetPod().GetName(), start.GetPort(),
		readWriteNopCloser{session})
	switch {
	case err == nil, ctx.Err() != nil:
		return nil
	case isNotFound(err):
		return fromProvider(err)
	}
	_ = session.WriteError(err.Error())
	return nil
}

type readWriteNopCloser struct{ io.ReadWriter }

func (readWriteNopCloser) Close() error { return nil }
