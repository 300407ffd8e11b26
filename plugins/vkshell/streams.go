package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
)

// exitError carries a process's exit code, the way virtual-kubelet providers
// report exec results (k8s.io/utils/exec.ExitError's ExitStatus method).
type exitError struct {
	code    int
	message string
}

func (e *exitError) Error() string   { return e.message }
func (e *exitError) ExitStatus() int { return e.code }

// runningContainer finds the pod run and the spec of one of its containers.
func (p *ShellProvider) runningContainer(namespace, podName, container string) (*podRun, *corev1.Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run, ok := p.pods[key(namespace, podName)]
	if !ok {
		return nil, nil, errdefs.NotFoundf("pod %s/%s is not known", namespace, podName)
	}
	for _, list := range [][]corev1.Container{run.pod.Spec.Containers, run.pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == container {
				return run, &list[i], nil
			}
		}
	}
	return nil, nil, errdefs.NotFoundf("pod %s/%s has no container %q", namespace, podName, container)
}

// GetContainerLogs returns the output of the container's current instance
// (or, with Previous, of the one before), honouring Tail, SinceTime,
// SinceSeconds, LimitBytes and Follow.
func (p *ShellProvider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	run, _, err := p.runningContainer(namespace, podName, containerName)
	if err != nil {
		return nil, err
	}
	run.mu.Lock()
	log := run.current[containerName]
	if opts.Previous {
		log = run.previous[containerName]
	}
	run.mu.Unlock()
	if log == nil {
		if opts.Previous {
			return nil, errdefs.NotFoundf("container %q of pod %s/%s has no previous instance", containerName, namespace, podName)
		}
		return io.NopCloser(&emptyReader{}), nil // not started yet: no output
	}
	q := logQuery{follow: opts.Follow, tail: opts.Tail, since: opts.SinceTime, limitBytes: opts.LimitBytes}
	if opts.SinceSeconds > 0 {
		q.since = time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	return log.Reader(ctx, q), nil
}

type emptyReader struct{}

func (*emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

// RunInContainer runs cmd beside the container's process, with the
// container's environment and working directory. There is no terminal: with
// TTY, stderr goes to stdout. The process group is killed when ctx is done.
func (p *ShellProvider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	run, c, err := p.runningContainer(namespace, podName, containerName)
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		return &exitError{126, "no command given"}
	}
	proc := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	proc.Dir = run.podDir(c)
	proc.Env = environment(c)
	proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc.Cancel = func() error { return syscall.Kill(-proc.Process.Pid, syscall.SIGKILL) }
	proc.WaitDelay = pipeGrace
	proc.Stdout, proc.Stderr = attach.Stdout(), attach.Stderr()
	if attach.TTY() || proc.Stderr == nil {
		proc.Stderr = proc.Stdout
	}
	var stdin io.WriteCloser
	if attach.Stdin() != nil {
		if stdin, err = proc.StdinPipe(); err != nil {
			return &exitError{126, err.Error()}
		}
	}
	if err := proc.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return &exitError{code, fmt.Sprintf("cannot run %q: %v", cmd[0], err)}
	}
	if stdin != nil {
		// Not waited for: it ends when the client closes stdin or the session
		// ends, which may be after the process exited.
		go func() {
			io.Copy(stdin, attach.Stdin())
			stdin.Close()
		}()
	}
	err = proc.Wait()
	if code := exitCode(proc.ProcessState, err); code != 0 {
		return &exitError{code, fmt.Sprintf("command exited with status %d", code)}
	}
	return nil
}

// AttachToContainer streams the container's output from now on and feeds
// stdin to its process when the container has stdin. It returns when the
// process exits (with its status) or when the client detaches (ctx done),
// leaving the process running.
func (p *ShellProvider) AttachToContainer(ctx context.Context, namespace, podName, containerName string, attach api.AttachIO) error {
	run, _, err := p.runningContainer(namespace, podName, containerName)
	if err != nil {
		return err
	}
	run.mu.Lock()
	inst := run.instances[containerName]
	run.mu.Unlock()
	if inst == nil {
		return errdefs.InvalidInputf("container %q of pod %s/%s is not running", containerName, namespace, podName)
	}
	if attach.Stdin() != nil && inst.stdin != nil {
		go io.Copy(inst.stdin, attach.Stdin())
	}
	if out := attach.Stdout(); out != nil {
		output := inst.log.Reader(ctx, logQuery{follow: true, tail: -1})
		defer output.Close()
		io.Copy(out, output)
	}
	select {
	case <-inst.done:
		if inst.code != 0 {
			return &exitError{inst.code, "container process exited with status " + strconv.Itoa(inst.code)}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PortForward connects to the port on this machine (the pod's processes
// share its network) and relays both ways until the pod side closes.
func (p *ShellProvider) PortForward(ctx context.Context, namespace, podName string, port int32, stream io.ReadWriteCloser) error {
	p.mu.Lock()
	_, ok := p.pods[key(namespace, podName)]
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s/%s is not known", namespace, podName)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		io.Copy(conn, stream)
		if tcp, ok := conn.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	return err
}
