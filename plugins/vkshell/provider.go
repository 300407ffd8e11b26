package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ShellProvider is a virtual-kubelet provider, written the way providers for
// github.com/virtual-kubelet/virtual-kubelet are (node.PodLifecycleHandler,
// node.PodNotifier, GetContainerLogs, RunInContainer, AttachToContainer,
// PortForward, ConfigureNode, all on corev1 types), that runs each
// container's command and args as a local process. Images are not pulled:
// the command must exist on this machine. Output is kept for logs and
// attach; restart policies restart exited containers with back-off.
//
// Pods are keyed by namespace/name. DeletePod signals the processes (SIGTERM,
// SIGKILL after the grace period), reports their terminated states through
// NotifyPods and then forgets the pod, so GetPod answers not-found.
//
// Safe for concurrent use. mu guards every pod's state; the NotifyPods
// callback is called with mu held so that the statuses of one pod are
// delivered in order (the vkadapter callback never blocks).
type ShellProvider struct {
	workDir string // per-pod working directories are created here

	mu     sync.Mutex
	pods   map[string]*podRun // by namespace/name
	notify func(*corev1.Pod)
	wg     sync.WaitGroup // pod goroutines
}

// NewShellProvider returns a provider whose pods get working directories
// under workDir.
func NewShellProvider(workDir string) *ShellProvider {
	return &ShellProvider{workDir: workDir, pods: map[string]*podRun{}, notify: func(*corev1.Pod) {}}
}

func key(namespace, name string) string { return namespace + "/" + name }

// NotifyPods implements node.PodNotifier.
func (p *ShellProvider) NotifyPods(_ context.Context, notify func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = notify
}

// CreatePod implements node.PodLifecycleHandler: it records the pod with
// every container waiting and starts running it in the background.
func (p *ShellProvider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if len(c.Command)+len(c.Args) == 0 {
			return errdefs.InvalidInputf("container %q has no command: this backend runs the command "+
				"and args on the host and cannot use an image's entrypoint", c.Name)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := key(pod.Namespace, pod.Name)
	if _, ok := p.pods[k]; ok {
		return nil
	}
	dir, err := os.MkdirTemp(p.workDir, "pod-"+pod.Name+"-")
	if err != nil {
		return fmt.Errorf("cannot create the working directory of pod %s: %w", k, err)
	}
	run := newPodRun(p, pod.DeepCopy(), dir)
	p.pods[k] = run
	p.notifyLocked(run)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		run.run()
		p.forget(k, run)
	}()
	return nil
}

// UpdatePod implements node.PodLifecycleHandler: labels and annotations
// change; processes keep running (a local process cannot change image).
func (p *ShellProvider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	run, ok := p.pods[key(pod.Namespace, pod.Name)]
	if !ok {
		return errdefs.NotFoundf("pod %s/%s is not known", pod.Namespace, pod.Name)
	}
	run.pod.Labels, run.pod.Annotations = pod.Labels, pod.Annotations
	p.notifyLocked(run)
	return nil
}

// DeletePod implements node.PodLifecycleHandler: it stops the pod's
// processes within the pod's deletion grace period and returns at once.
func (p *ShellProvider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	run, ok := p.pods[key(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s/%s is not known", pod.Namespace, pod.Name)
	}
	grace := 30 * time.Second
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	run.stop(grace)
	return nil
}

// GetPod implements node.PodLifecycleHandler.
func (p *ShellProvider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run, ok := p.pods[key(namespace, name)]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not known", namespace, name)
	}
	return run.pod.DeepCopy(), nil
}

// GetPodStatus implements node.PodLifecycleHandler.
func (p *ShellProvider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods implements node.PodLifecycleHandler.
func (p *ShellProvider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, run := range p.pods {
		out = append(out, run.pod.DeepCopy())
	}
	return out, nil
}

// ConfigureNode fills the node's capacity from this machine.
func (p *ShellProvider) ConfigureNode(_ context.Context, node *corev1.Node) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:  *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) == nil {
		capacity[corev1.ResourceMemory] = *resource.NewQuantity(int64(info.Totalram)*int64(info.Unit), resource.BinarySI)
	}
	node.Status.Capacity = capacity
	node.Status.Allocatable = capacity
	node.Status.NodeInfo.OperatingSystem = runtime.GOOS
	node.Status.NodeInfo.Architecture = runtime.GOARCH
	node.Status.NodeInfo.ContainerRuntimeVersion = "vkshell://" + version
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "vkshell runs processes", LastTransitionTime: metav1.Now()}}
}

// Close kills every pod's processes and waits for them: a local process
// cannot be re-adopted by a later plugin process, so none is left behind.
func (p *ShellProvider) Close() {
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.pods))
	for _, run := range p.pods {
		runs = append(runs, run)
	}
	p.mu.Unlock()
	for _, run := range runs {
		run.stop(0)
	}
	p.wg.Wait()
}

// notifyLocked reports run's current status. p.mu must be held.
func (p *ShellProvider) notifyLocked(run *podRun) {
	run.pod.Status.Phase = phaseOf(run.pod)
	p.notify(run.pod.DeepCopy())
}

// update changes run's pod under the lock and reports it.
func (p *ShellProvider) update(run *podRun, change func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(run.pod)
	p.notifyLocked(run)
}

// forget drops a pod whose processes have all ended after DeletePod.
func (p *ShellProvider) forget(k string, run *podRun) {
	p.mu.Lock()
	if p.pods[k] == run {
		delete(p.pods, k)
	}
	p.mu.Unlock()
	os.RemoveAll(run.dir)
}

// containerStatus returns the status slot of a container, by name.
func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// phaseOf derives the pod phase from the container states as the kubelet
// does: Failed when an init container failed for good, Pending until the
// init containers are done and a container started, Succeeded or Failed
// when every container terminated for good, Running otherwise.
func phaseOf(pod *corev1.Pod) corev1.PodPhase {
	for _, cs := range pod.Status.InitContainerStatuses {
		t := cs.State.Terminated
		if t != nil && t.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		if t == nil || t.ExitCode != 0 {
			if cs.State.Running == nil || !isSidecar(pod, cs.Name) {
				return corev1.PodPending
			}
		}
	}
	allDone, anyFailed, anyStarted := len(pod.Status.ContainerStatuses) > 0, false, false
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			anyFailed = anyFailed || t.ExitCode != 0
			anyStarted = true
			continue
		}
		allDone = false
		anyStarted = anyStarted || cs.State.Running != nil || cs.RestartCount > 0
	}
	switch {
	case allDone && anyFailed:
		return corev1.PodFailed
	case allDone:
		return corev1.PodSucceeded
	case anyStarted:
		return corev1.PodRunning
	}
	return corev1.PodPending
}

func isSidecar(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
	}
	return false
}

// podDir is where a container runs when its spec names no working directory.
func (r *podRun) podDir(c *corev1.Container) string {
	if c.WorkingDir != "" {
		return c.WorkingDir
	}
	return filepath.Clean(r.dir)
}
