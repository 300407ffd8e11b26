package vkadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sdk "github.com/vkhost/vkhost/sdk/go"
	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// Options describe the plugin the adapter presents to vkhost.
type Options struct {
	// Name is the plugin name, a DNS-1123 label ("aci", "mybackend"); the
	// host puts it in the node's taint. Required.
	Name string
	// Version of the plugin, free form.
	Version string
	// Manifest is shown by `vkhost plugin-info`.
	Manifest map[string]string
	// LogsPrevious lists CAPABILITY_CONTAINER_LOGS_PREVIOUS: set it when the
	// provider's GetContainerLogs honours opts.Previous (and answers
	// not-found when there is no previous instance).
	LogsPrevious bool
	// ForgetPollInterval is how often, after DeletePod, the adapter asks the
	// provider whether the pod is gone; 0 means 250 ms.
	ForgetPollInterval time.Duration
}

// Adapter is an sdk.Provider over a virtual-kubelet provider. Create it with
// New, serve it with sdk.Serve or sdk.ServeMain, Close it when done. Safe for
// concurrent use.
//
// Identity: vkhost names pods by UID, virtual-kubelet providers by
// namespace and name. The adapter addresses the provider by the namespace and
// name of the reference and treats a provider pod with another UID as a
// different pod (NOT_FOUND, or UNAVAILABLE for CreatePod while the old one
// is still there).
//
// Deletion: DeletePod calls the provider's DeletePod with DeletionTimestamp
// and the grace period set, as virtual-kubelet does, then the adapter
// forgets the pod (DELETED event, NOT_FOUND from then on) once the provider
// no longer has it or reports every container terminated.
type Adapter struct {
	sdk.UnimplementedProvider
	provider PodLifecycleHandler
	opts     Options
	caps     []v1.Capability
	feed     sdk.PodStatusFeed

	ctx    context.Context // ends background work on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	createMu sync.Mutex // one CreatePod at a time, for idempotency by UID

	mu        sync.Mutex
	known     map[string]*corev1.Pod // by UID: pods this adapter created or saw
	deleting  map[string]bool        // by UID: DeletePod called, not yet forgotten
	forgotten map[string]bool        // by UID: reported DELETED; hidden from now on
}

// New wraps provider. Capabilities follow from the methods it has (see
// README.md). With a PodNotifier, New registers the adapter's callback
// right away, as virtual-kubelet's pod controller does when it starts.
func New(provider PodLifecycleHandler, opts Options) *Adapter {
	if opts.ForgetPollInterval == 0 {
		opts.ForgetPollInterval = 250 * time.Millisecond
	}
	a := &Adapter{provider: provider, opts: opts, known: map[string]*corev1.Pod{},
		deleting: map[string]bool{}, forgotten: map[string]bool{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.caps = capabilitiesOf(provider, opts)
	if notifier, ok := provider.(PodNotifier); ok {
		notifier.NotifyPods(a.ctx, a.onNotify)
	}
	return a
}

// capabilityRules: which optional interface earns which capability.
var capabilityRules = []struct {
	capability v1.Capability
	has        func(any) bool
}{
	{v1.Capability_CAPABILITY_WATCH_POD_STATUS, func(p any) bool { _, ok := p.(PodNotifier); return ok }},
	{v1.Capability_CAPABILITY_UPDATE_POD, func(any) bool { return true }},
	{v1.Capability_CAPABILITY_NODE_INFO, func(p any) bool { _, ok := p.(NodeConfigurer); return ok }},
	{v1.Capability_CAPABILITY_CONTAINER_LOGS, func(p any) bool { _, ok := p.(ContainerLogsGetter); return ok }},
	{v1.Capability_CAPABILITY_EXEC, func(p any) bool { _, ok := p.(ContainerRunner); return ok }},
	{v1.Capability_CAPABILITY_ATTACH, func(p any) bool { _, ok := p.(ContainerAttacher); return ok }},
	{v1.Capability_CAPABILITY_PORT_FORWARD, func(p any) bool { _, ok := p.(PortForwarder); return ok }},
	{v1.Capability_CAPABILITY_STATS, func(p any) bool { _, ok := p.(StatsSummaryGetter); return ok }},
}

func capabilitiesOf(provider PodLifecycleHandler, opts Options) []v1.Capability {
	var caps []v1.Capability
	for _, rule := range capabilityRules {
		if rule.has(provider) {
			caps = append(caps, rule.capability)
		}
	}
	if _, ok := provider.(ContainerLogsGetter); ok && opts.LogsPrevious {
		caps = append(caps, v1.Capability_CAPABILITY_CONTAINER_LOGS_PREVIOUS)
	}
	return caps
}

// Close stops the adapter's background work (NotifyPods registration,
// deletion watchers) and waits for it.
func (a *Adapter) Close() {
	a.cancel()
	a.wg.Wait()
}

// PluginInfo implements sdk.Provider.
func (a *Adapter) PluginInfo(context.Context) *v1.GetPluginInfoResponse {
	return &v1.GetPluginInfoResponse{Name: a.opts.Name, Version: a.opts.Version, Manifest: a.opts.Manifest}
}

// Capabilities implements sdk.Provider.
func (a *Adapter) Capabilities() []v1.Capability { return a.caps }

// PodStatusFeed implements sdk.PodStatusSource.
func (a *Adapter) PodStatusFeed() *sdk.PodStatusFeed { return &a.feed }

// Probe reports not ready while the provider's Ping (if any) fails.
func (a *Adapter) Probe(ctx context.Context) (*v1.ProbeResponse, error) {
	if pinger, ok := a.provider.(Pinger); ok {
		if err := pinger.Ping(ctx); err != nil {
			return &v1.ProbeResponse{Ready: false, Message: err.Error()}, nil
		}
	}
	return &v1.ProbeResponse{Ready: true}, nil
}

// providerPod returns the provider's pod for ref, or an ErrNotFound error
// when the provider lacks it, has another pod (UID) of that name, or the
// adapter already forgot it.
func (a *Adapter) providerPod(ctx context.Context, ref *v1.PodRef) (*corev1.Pod, error) {
	notFound := fmt.Errorf("pod %s/%s (uid %s): %w", ref.GetNamespace(), ref.GetName(), ref.GetUid(), sdk.ErrNotFound)
	a.mu.Lock()
	gone := a.forgotten[ref.GetUid()]
	a.mu.Unlock()
	if gone {
		return nil, notFound
	}
	pod, err := a.provider.GetPod(ctx, ref.GetNamespace(), ref.GetName())
	switch {
	case isNotFound(err):
		return nil, notFound
	case err != nil:
		return nil, fromProvider(err)
	case pod == nil, pod.UID != "" && string(pod.UID) != ref.GetUid():
		return nil, notFound
	}
	return pod, nil
}

// CreatePod implements sdk.Provider.
func (a *Adapter) CreatePod(ctx context.Context, p *v1.Pod) error {
	a.createMu.Lock()
	defer a.createMu.Unlock()
	a.mu.Lock()
	_, known := a.known[p.GetUid()]
	a.mu.Unlock()
	if known {
		return nil
	}
	ref := &v1.PodRef{Uid: p.GetUid(), Namespace: p.GetNamespace(), Name: p.GetName()}
	existing, err := a.provider.GetPod(ctx, p.GetNamespace(), p.GetName())
	if err != nil && !isNotFound(err) {
		return fromProvider(err)
	}
	if err == nil && existing != nil {
		if existing.UID == "" || string(existing.UID) == p.GetUid() {
			existing = existing.DeepCopy() // the provider's copy may be shared
			existing.UID = types.UID(p.GetUid())
			a.remember(existing) // the provider kept it across a plugin restart
			return nil
		}
		return fmt.Errorf("pod %s/%s: the provider still has an earlier pod of that name (uid %s); retry later: %w",
			ref.Namespace, ref.Name, existing.UID, sdk.ErrUnavailable)
	}
	pod, err := toKubePod(p)
	if err != nil {
		return err
	}
	if err := a.provider.CreatePod(ctx, pod.DeepCopy()); err != nil {
		return fromProvider(err)
	}
	a.remember(pod)
	return nil
}

// remember records a pod the provider has; a UID created again after it was
// forgotten is visible again.
func (a *Adapter) remember(pod *corev1.Pod) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.known[string(pod.UID)] = pod
	delete(a.forgotten, string(pod.UID))
}

// UpdatePod implements sdk.Provider.
func (a *Adapter) UpdatePod(ctx context.Context, p *v1.Pod) error {
	ref := &v1.PodRef{Uid: p.GetUid(), Namespace: p.GetNamespace(), Name: p.GetName()}
	if _, err := a.providerPod(ctx, ref); err != nil {
		return err
	}
	pod, err := toKubePod(p)
	if err != nil {
		return err
	}
	if err := a.provider.UpdatePod(ctx, pod.DeepCopy()); err != nil {
		return fromProvider(err)
	}
	a.remember(pod)
	return nil
}

// DeletePod implements sdk.Provider.
func (a *Adapter) DeletePod(ctx context.Context, ref *v1.PodRef, grace *int64) error {
	pod, err := a.providerPod(ctx, ref)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil // unknown or already forgotten: success
	}
	if err != nil {
		return err
	}
	pod = pod.DeepCopy()
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	if grace != nil {
		pod.DeletionGracePeriodSeconds = grace
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		pod.DeletionGracePeriodSeconds = pod.Spec.TerminationGracePeriodSeconds
	}
	if err := a.provider.DeletePod(ctx, pod); err != nil && !isNotFound(err) {
		return fromProvider(err)
	}
	a.mu.Lock()
	watching := a.deleting[ref.GetUid()]
	a.deleting[ref.GetUid()] = true
	a.mu.Unlock()
	if !watching {
		a.wg.Add(1)
		go a.forgetWhenGone(copyRef(ref))
	}
	return nil
}

func copyRef(ref *v1.PodRef) *v1.PodRef {
	return &v1.PodRef{Uid: ref.GetUid(), Namespace: ref.GetNamespace(), Name: ref.GetName()}
}

// forgetWhenGone polls until the provider no longer has the pod, or reports
// every container terminated, then forgets it. Runs on its own goroutine
// until then or Close.
func (a *Adapter) forgetWhenGone(ref *v1.PodRef) {
	defer a.wg.Done()
	ticker := time.NewTicker(a.opts.ForgetPollInterval)
	defer ticker.Stop()
	for {
		if a.gone(ref) {
			a.mu.Lock()
			delete(a.known, ref.Uid)
			delete(a.deleting, ref.Uid)
			a.forgotten[ref.Uid] = true
			a.mu.Unlock()
			a.feed.PublishDeleted(ref)
			return
		}
		select {
		case <-a.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// gone reports whether a pod being deleted is over for vkhost's purposes.
func (a *Adapter) gone(ref *v1.PodRef) bool {
	st, err := a.GetPodStatus(a.ctx, ref)
	if errors.Is(err, sdk.ErrNotFound) {
		return true
	}
	return err == nil && terminated(st)
}

// GetPodStatus implements sdk.Provider.
func (a *Adapter) GetPodStatus(ctx context.Context, ref *v1.PodRef) (*v1.PodStatus, error) {
	pod, err := a.providerPod(ctx, ref)
	if err != nil {
		return nil, err
	}
	st, err := a.provider.GetPodStatus(ctx, ref.GetNamespace(), ref.GetName())
	if isNotFound(err) {
		return nil, fmt.Errorf("pod %s/%s: %w", ref.GetNamespace(), ref.GetName(), sdk.ErrNotFound)
	}
	if err != nil {
		return nil, fromProvider(err)
	}
	if st == nil {
		st = &pod.Status
	}
	return toStatus(copyRef(ref), a.specOf(pod), st), nil
}

// specOf is the pod's spec as the provider has it, or as the adapter created
// it when the provider's copy lacks containers.
func (a *Adapter) specOf(pod *corev1.Pod) *corev1.PodSpec {
	if len(pod.Spec.Containers) > 0 {
		return &pod.Spec
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if known, ok := a.known[string(pod.UID)]; ok {
		return &known.Spec
	}
	return &pod.Spec
}

// ListPods implements sdk.Provider.
func (a *Adapter) ListPods(ctx context.Context) ([]*v1.PodStatus, error) {
	pods, err := a.provider.GetPods(ctx)
	if err != nil {
		return nil, fromProvider(err)
	}
	out := make([]*v1.PodStatus, 0, len(pods))
	present := make(map[string]bool, len(pods))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pod := range pods {
		if pod == nil || pod.UID == "" {
			continue
		}
		present[string(pod.UID)] = true
		if a.forgotten[string(pod.UID)] {
			continue
		}
		spec := &pod.Spec
		if known, ok := a.known[string(pod.UID)]; ok && len(spec.Containers) == 0 {
			spec = &known.Spec
		}
		out = append(out, toStatus(refOf(pod), spec, &pod.Status))
	}
	// A forgotten pod the provider no longer has needs no hiding any more;
	// this keeps the set bounded by the pods the provider still holds.
	for uid := range a.forgotten {
		if !present[uid] {
			delete(a.forgotten, uid)
		}
	}
	return out, nil
}

// onNotify is the provider's NotifyPods callback: a status change becomes a
// WatchPodStatus event; for a pod being deleted it may also be the end.
func (a *Adapter) onNotify(pod *corev1.Pod) {
	if pod == nil || pod.UID == "" {
		return
	}
	a.mu.Lock()
	hidden := a.forgotten[string(pod.UID)]
	a.mu.Unlock()
	if hidden {
		return
	}
	a.feed.Publish(toStatus(refOf(pod), a.specOf(pod), &pod.Status))
}
