package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// Restart back-off, as the kubelet's but capped lower: local processes
	// restart cheaply.
	initialBackoff = time.Second
	maxBackoff     = 30 * time.Second
	// How long output pipes may outlive a process (held by its children).
	pipeGrace = time.Second
)

// podRun runs one pod's containers: init containers in order (sidecars,
// with restartPolicy Always, keep running), then the containers in
// parallel, each restarted as the restart policy says, until stop.
//
// The pod's status lives in pod, guarded by the provider's mu; the running
// processes in instances, guarded by mu. run is called on its own goroutine
// and returns when every container has ended after stop.
type podRun struct {
	p   *ShellProvider
	pod *corev1.Pod
	dir string
	ip  string

	stopping chan struct{} // closed by stop

	mu        sync.Mutex
	stopped   bool
	grace     time.Duration
	instances map[string]*instance     // the running instance per container
	previous  map[string]*containerLog // the last terminated instance's log
	current   map[string]*containerLog // the latest instance's log
}

// instance is one process of a container.
type instance struct {
	cmd   *exec.Cmd
	log   *containerLog
	stdin io.WriteCloser // nil unless the container asked for stdin
	done  chan struct{}  // closed when the process was reaped
	code  int            // valid after done
}

func newPodRun(p *ShellProvider, pod *corev1.Pod, dir string) *podRun {
	r := &podRun{p: p, pod: pod, dir: dir, stopping: make(chan struct{}),
		instances: map[string]*instance{}, previous: map[string]*containerLog{},
		current: map[string]*containerLog{}}
	r.ip = pod.Status.HostIP
	if r.ip == "" {
		r.ip = "127.0.0.1"
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: &now, HostIP: r.ip, PodIP: r.ip,
		PodIPs: []corev1.PodIP{{IP: r.ip}}}
	waiting := func(c corev1.Container) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	}
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, waiting(c))
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, waiting(c))
	}
	return r
}

func (r *podRun) run() {
	var wg sync.WaitGroup
	start := func(c corev1.Container, restart func(code int) bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runContainer(c, restart)
		}()
	}
	initOK := true
	for _, c := range r.pod.Spec.InitContainers {
		if isSidecar(r.pod, c.Name) {
			start(c, func(int) bool { return true })
			continue
		}
		if code, stopped := r.runContainer(c, r.restartsInit); stopped || code != 0 {
			initOK = false
			break
		}
	}
	if initOK {
		for _, c := range r.pod.Spec.Containers {
			start(c, r.restartsMain)
		}
	}
	<-r.stopping // a pod that completed stays until DeletePod
	wg.Wait()
	r.p.update(r, finalize)
}

// restartsInit and restartsMain apply the pod's restart policy.
func (r *podRun) restartsInit(code int) bool {
	return code != 0 && r.pod.Spec.RestartPolicy != corev1.RestartPolicyNever
}

func (r *podRun) restartsMain(code int) bool {
	switch r.pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// runContainer runs instances of c until one ends for good or the pod
// stops. Returns the last exit code and whether the pod was stopped.
func (r *podRun) runContainer(c corev1.Container, restart func(code int) bool) (int, bool) {
	backoff := initialBackoff
	for {
		code, ran := r.runInstance(&c)
		if !ran || r.isStopping() || !restart(code) {
			return code, !ran || r.isStopping()
		}
		r.p.update(r, func(pod *corev1.Pod) {
			cs := containerStatus(pod, c.Name)
			cs.LastTerminationState = cs.State
			cs.RestartCount++
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting container %s", backoff, c.Name)}}
		})
		select {
		case <-time.After(backoff):
		case <-r.stopping:
			return code, true
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (r *podRun) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

// runInstance starts one process of c and waits for it. ran is false when
// the pod was already stopping, so nothing started.
func (r *podRun) runInstance(c *corev1.Container) (code int, ran bool) {
	inst, err := r.startInstance(c)
	if inst == nil && err == nil {
		return 0, false
	}
	if err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		now := metav1.Now()
		r.p.update(r, func(pod *corev1.Pod) {
			cs := containerStatus(pod, c.Name)
			cs.Ready, cs.Started = false, ptr(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code),
				Reason: "StartError", Message: err.Error(), StartedAt: now, FinishedAt: now}}
		})
		return code, true
	}
	started := metav1.Now()
	id := "vkshell://" + strconv.Itoa(inst.cmd.Process.Pid)
	r.p.update(r, func(pod *corev1.Pod) {
		cs := containerStatus(pod, c.Name)
		cs.Ready, cs.Started, cs.ContainerID = true, ptr(true), id
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	})
	<-inst.done
	state := inst.cmd.ProcessState
	terminated := &corev1.ContainerStateTerminated{ExitCode: int32(inst.code), Reason: "Completed",
		StartedAt: started, FinishedAt: metav1.Now(), ContainerID: id}
	if inst.code != 0 {
		terminated.Reason = "Error"
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		terminated.Signal = int32(ws.Signal())
	}
	r.p.update(r, func(pod *corev1.Pod) {
		cs := containerStatus(pod, c.Name)
		cs.Ready = false
		cs.State = corev1.ContainerState{Terminated: terminated}
	})
	return inst.code, true
}

// startInstance starts a process of c in its own process group, or returns
// (nil, nil) when the pod is stopping.
func (r *podRun) startInstance(c *corev1.Container) (*instance, error) {
	argv := append(append([]string(nil), c.Command...), c.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = r.podDir(c)
	cmd.Env = environment(c)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = pipeGrace
	inst := &instance{cmd: cmd, log: newContainerLog(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = inst.log, inst.log
	if c.Stdin {
		var err error
		if inst.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil, nil
	}
	if old, ok := r.current[c.Name]; ok {
		r.previous[c.Name] = old
	}
	r.current[c.Name] = inst.log
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(inst.log, "cannot start %q: %v\n", argv[0], err)
		inst.log.Close()
		return nil, err
	}
	r.instances[c.Name] = inst
	go func() {
		err := cmd.Wait()
		inst.code = exitCode(cmd.ProcessState, err)
		inst.log.Close()
		r.mu.Lock()
		if r.instances[c.Name] == inst {
			delete(r.instances, c.Name)
		}
		r.mu.Unlock()
		close(inst.done)
	}()
	return inst, nil
}

// exitCode is the shell's view of how a process ended: its status, or 128+N
// when killed by signal N.
func exitCode(state *os.ProcessState, err error) int {
	if state == nil {
		return 126
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := state.ExitCode(); code >= 0 {
		return code
	}
	if err != nil {
		return 1
	}
	return 0
}

// environment is the process environment: PATH and HOME from the plugin's
// own, so commands resolve as in a shell here, then the container's env in
// order (later entries win).
func environment(c *corev1.Container) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if os.Getenv("PATH") == "" {
		env[0] = "PATH=/usr/local/bin:/usr/bin:/bin"
	}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	return env
}

// stop signals every process of the pod: SIGTERM now, SIGKILL after grace
// (at once when grace is 0). A shorter grace on a later call shortens the
// wait; a longer one does not extend it (spec.md §5.1.4).
func (r *podRun) stop(grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped && grace >= r.grace {
		return
	}
	first := !r.stopped
	r.stopped, r.grace = true, grace
	if first {
		close(r.stopping)
	}
	signal := syscall.SIGTERM
	if grace == 0 {
		signal = syscall.SIGKILL
	}
	for _, inst := range r.instances {
		syscall.Kill(-inst.cmd.Process.Pid, signal)
	}
	if grace > 0 {
		time.AfterFunc(grace, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, inst := range r.instances {
				syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
			}
		})
	}
}

// finalize gives every container a terminated state for the pod's last
// status: a container between restarts keeps its last termination, one that
// never started is reported as such.
func finalize(pod *corev1.Pod) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			cs.Ready = false
			if cs.State.Terminated != nil {
				continue
			}
			if cs.LastTerminationState.Terminated != nil {
				cs.State = cs.LastTerminationState
				continue
			}
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137,
				Reason: "ContainerStatusUnknown", Message: "never started: the pod was deleted first",
				FinishedAt: metav1.Now()}}
		}
	}
}

func ptr[T any](v T) *T { return &v }
