package vkadapter

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sdk "github.com/vkhost/vkhost/sdk/go"
	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// restartPolicies maps the protocol's restart policy to Kubernetes'.
var restartPolicies = map[v1.RestartPolicy]corev1.RestartPolicy{
	v1.RestartPolicy_RESTART_POLICY_UNSPECIFIED: corev1.RestartPolicyAlways,
	v1.RestartPolicy_RESTART_POLICY_ALWAYS:      corev1.RestartPolicyAlways,
	v1.RestartPolicy_RESTART_POLICY_ON_FAILURE:  corev1.RestartPolicyOnFailure,
	v1.RestartPolicy_RESTART_POLICY_NEVER:       corev1.RestartPolicyNever,
}

// toKubePod builds the corev1.Pod a virtual-kubelet provider expects, as
// virtual-kubelet's own pod controller would hand it over: the API server's
// object (pod_json) with env values resolved, so a provider needs no
// ConfigMap or Secret access for env. Fields of the curated message win over
// the JSON (UpdatePod carries new labels, annotations and images in them);
// without JSON the pod is built from the curated message alone.
// ErrInvalidArgument when the JSON or a resource quantity does not parse.
func toKubePod(p *v1.Pod) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if len(p.GetPodJson()) > 0 {
		if err := json.Unmarshal(p.GetPodJson(), pod); err != nil {
			return nil, fmt.Errorf("pod %s/%s: the pod JSON does not parse: %v: %w",
				p.GetNamespace(), p.GetName(), err, sdk.ErrInvalidArgument)
		}
	}
	// A fresh pod has no status yet; the node's address is its hostIP.
	pod.Status = corev1.PodStatus{HostIP: p.GetHostIp()}
	pod.UID = types.UID(p.GetUid())
	pod.Namespace, pod.Name = p.GetNamespace(), p.GetName()
	pod.Labels, pod.Annotations = p.GetLabels(), p.GetAnnotations()
	if p.GetCreationTime() != nil && pod.CreationTimestamp.IsZero() {
		pod.CreationTimestamp = metav1.NewTime(p.GetCreationTime().AsTime())
	}
	spec := &pod.Spec
	spec.NodeName = p.GetNodeName()
	spec.RestartPolicy = restartPolicies[p.GetRestartPolicy()]
	spec.TerminationGracePeriodSeconds = p.TerminationGracePeriodSeconds
	spec.ActiveDeadlineSeconds = p.ActiveDeadlineSeconds
	spec.Hostname, spec.Subdomain = p.GetHostname(), p.GetSubdomain()
	spec.HostNetwork = p.GetHostNetwork()
	spec.ServiceAccountName = p.GetServiceAccountName()
	if sc := p.GetSecurityContext(); sc != nil {
		if spec.SecurityContext == nil {
			spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		spec.SecurityContext.RunAsUser = sc.RunAsUser
		spec.SecurityContext.RunAsGroup = sc.RunAsGroup
		spec.SecurityContext.RunAsNonRoot = sc.RunAsNonRoot
		spec.SecurityContext.FSGroup = sc.FsGroup
		spec.SecurityContext.SupplementalGroups = p.GetSecurityContext().GetSupplementalGroups()
	}
	var err error
	if spec.InitContainers, err = mergeContainers(spec.InitContainers, p.GetInitContainers()); err != nil {
		return nil, err
	}
	if spec.Containers, err = mergeContainers(spec.Containers, p.GetContainers()); err != nil {
		return nil, err
	}
	if len(spec.Volumes) == 0 {
		spec.Volumes = curatedVolumes(p.GetVolumes())
	}
	return pod, nil
}

// mergeContainers lays the curated containers over the JSON ones with the
// same name (keeping what the curated message lacks: probes, lifecycle
// hooks, ...), in the curated order.
func mergeContainers(fromJSON []corev1.Container, curated []*v1.Container) ([]corev1.Container, error) {
	byName := make(map[string]corev1.Container, len(fromJSON))
	for _, c := range fromJSON {
		byName[c.Name] = c
	}
	out := make([]corev1.Container, 0, len(curated))
	for _, c := range curated {
		merged := byName[c.GetName()]
		if err := overlayContainer(&merged, c); err != nil {
			return nil, err
		}
		out = append(out, merged)
	}
	return out, nil
}

func overlayContainer(k *corev1.Container, c *v1.Container) error {
	k.Name, k.Image = c.GetName(), c.GetImage()
	k.ImagePullPolicy = corev1.PullPolicy(c.GetImagePullPolicy())
	k.Command, k.Args, k.WorkingDir = c.GetCommand(), c.GetArgs(), c.GetWorkingDir()
	// The host resolved env (ConfigMap, Secret and downward API references,
	// envFrom): the values replace the references.
	k.Env, k.EnvFrom = nil, nil
	for _, e := range c.GetEnv() {
		k.Env = append(k.Env, corev1.EnvVar{Name: e.GetName(), Value: e.GetValue()})
	}
	k.Stdin, k.StdinOnce, k.TTY = c.GetStdin(), c.GetStdinOnce(), c.GetTty()
	k.TerminationMessagePath = c.GetTerminationMessagePath()
	k.TerminationMessagePolicy = corev1.TerminationMessagePolicy(c.GetTerminationMessagePolicy())
	if c.GetRestartPolicy() == v1.RestartPolicy_RESTART_POLICY_ALWAYS {
		always := corev1.ContainerRestartPolicyAlways
		k.RestartPolicy = &always
	}
	if len(k.Ports) == 0 {
		for _, p := range c.GetPorts() {
			k.Ports = append(k.Ports, corev1.ContainerPort{Name: p.GetName(), ContainerPort: p.GetContainerPort(),
				Protocol: corev1.Protocol(p.GetProtocol()), HostPort: p.GetHostPort(), HostIP: p.GetHostIp()})
		}
	}
	if len(k.VolumeMounts) == 0 {
		for _, m := range c.GetVolumeMounts() {
			k.VolumeMounts = append(k.VolumeMounts, corev1.VolumeMount{Name: m.GetName(),
				MountPath: m.GetMountPath(), ReadOnly: m.GetReadOnly(), SubPath: m.GetSubPath()})
		}
	}
	var err error
	if k.Resources.Requests, err = quantities(c.GetName(), c.GetResources().GetRequests()); err != nil {
		return err
	}
	k.Resources.Limits, err = quantities(c.GetName(), c.GetResources().GetLimits())
	return err
}

func quantities(container string, in map[string]string) (corev1.ResourceList, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for name, text := range in {
		q, err := resource.ParseQuantity(text)
		if err != nil {
			return nil, fmt.Errorf("container %s: resource %s=%q is not a quantity: %w",
				container, name, text, sdk.ErrInvalidArgument)
		}
		out[corev1.ResourceName(name)] = q
	}
	return out, nil
}

// curatedVolumes translates the volume kinds that have a Kubernetes shape of
// their own. Resolved files volumes (configMap, secret, downwardAPI,
// projected) have none without the pod JSON and are left out; see README.md.
func curatedVolumes(in []*v1.Volume) []corev1.Volume {
	var out []corev1.Volume
	for _, vol := range in {
		k := corev1.Volume{Name: vol.GetName()}
		switch {
		case vol.GetEmptyDir() != nil:
			ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMedium(vol.GetEmptyDir().GetMedium())}
			if q, err := resource.ParseQuantity(vol.GetEmptyDir().GetSizeLimit()); err == nil {
				ed.SizeLimit = &q
			}
			k.EmptyDir = ed
		case vol.GetHostPath() != nil:
			t := corev1.HostPathType(vol.GetHostPath().GetType())
			k.HostPath = &corev1.HostPathVolumeSource{Path: vol.GetHostPath().GetPath(), Type: &t}
		default:
			continue
		}
		out = append(out, k)
	}
	return out
}
