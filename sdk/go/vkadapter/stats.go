package vkadapter

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// GetStatsSummary translates the provider's kubelet stats summary. Fields
// the protocol has no place for (IO, PSI, swap, accelerators, process and
// rlimit stats, user-defined metrics, system containers) are dropped.
func (a *Adapter) GetStatsSummary(ctx context.Context) (*v1.GetStatsSummaryResponse, error) {
	getter, ok := a.provider.(StatsSummaryGetter)
	if !ok {
		return a.UnimplementedProvider.GetStatsSummary(ctx)
	}
	summary, err := getter.GetStatsSummary(ctx)
	if err != nil {
		return nil, fromProvider(err)
	}
	if summary == nil {
		return &v1.GetStatsSummaryResponse{}, nil
	}
	n := summary.Node
	out := &v1.GetStatsSummaryResponse{Node: &v1.NodeStats{StartTime: timestamp(n.StartTime),
		Cpu: cpuStats(n.CPU), Memory: memoryStats(n.Memory), Network: networkStats(n.Network), Fs: fsStats(n.Fs)}}
	for _, p := range summary.Pods {
		ps := &v1.PodStats{
			Pod:       &v1.PodRef{Uid: p.PodRef.UID, Namespace: p.PodRef.Namespace, Name: p.PodRef.Name},
			StartTime: timestamp(p.StartTime), Cpu: cpuStats(p.CPU), Memory: memoryStats(p.Memory),
			Network: networkStats(p.Network), EphemeralStorage: fsStats(p.EphemeralStorage),
		}
		for _, c := range p.Containers {
			ps.Containers = append(ps.Containers, &v1.ContainerStats{Name: c.Name, StartTime: timestamp(c.StartTime),
				Cpu: cpuStats(c.CPU), Memory: memoryStats(c.Memory), Rootfs: fsStats(c.Rootfs), Logs: fsStats(c.Logs)})
		}
		for _, vol := range p.VolumeStats {
			fs := vol.FsStats
			ps.Volumes = append(ps.Volumes, &v1.VolumeStats{Name: vol.Name, Fs: fsStats(&fs)})
		}
		out.Pods = append(out.Pods, ps)
	}
	return out, nil
}

func cpuStats(s *statsv1alpha1.CPUStats) *v1.CpuStats {
	if s == nil {
		return nil
	}
	return &v1.CpuStats{Time: timestamp(s.Time), UsageNanoCores: s.UsageNanoCores,
		UsageCoreNanoSeconds: s.UsageCoreNanoSeconds}
}

func memoryStats(s *statsv1alpha1.MemoryStats) *v1.MemoryStats {
	if s == nil {
		return nil
	}
	return &v1.MemoryStats{Time: timestamp(s.Time), AvailableBytes: s.AvailableBytes, UsageBytes: s.UsageBytes,
		WorkingSetBytes: s.WorkingSetBytes, RssBytes: s.RSSBytes, PageFaults: s.PageFaults,
		MajorPageFaults: s.MajorPageFaults}
}

func networkStats(s *statsv1alpha1.NetworkStats) *v1.NetworkStats {
	if s == nil {
		return nil
	}
	out := &v1.NetworkStats{Time: timestamp(s.Time)}
	interfaces := s.Interfaces
	if len(interfaces) == 0 && s.Name != "" {
		interfaces = []statsv1alpha1.InterfaceStats{s.InterfaceStats} // only the default one
	}
	for _, i := range interfaces {
		out.Interfaces = append(out.Interfaces, &v1.InterfaceStats{Name: i.Name, RxBytes: i.RxBytes,
			RxErrors: i.RxErrors, TxBytes: i.TxBytes, TxErrors: i.TxErrors})
	}
	return out
}

func fsStats(s *statsv1alpha1.FsStats) *v1.FsStats {
	if s == nil {
		return nil
	}
	return &v1.FsStats{Time: timestamp(s.Time), AvailableBytes: s.AvailableBytes, CapacityBytes: s.CapacityBytes,
		UsedBytes: s.UsedBytes, InodesFree: s.InodesFree, Inodes: s.Inodes, InodesUsed: s.InodesUsed}
}

// GetNode asks the provider's ConfigureNode to fill a blank Node and reports
// what it set: capacity, allocatable, conditions, labels, addresses and
// nodeInfo. The host owns the rest of the Node (name, taints, endpoints).
func (a *Adapter) GetNode(ctx context.Context, req *v1.GetNodeRequest) (*v1.NodeStatus, error) {
	configurer, ok := a.provider.(NodeConfigurer)
	if !ok {
		return a.UnimplementedProvider.GetNode(ctx, req)
	}
	node := &corev1.Node{}
	node.Name = req.GetNodeName()
	configurer.ConfigureNode(ctx, node)
	st := node.Status
	out := &v1.NodeStatus{Capacity: resourceMap(st.Capacity), Allocatable: resourceMap(st.Allocatable),
		Labels: node.Labels}
	for _, c := range st.Conditions {
		out.Conditions = append(out.Conditions, &v1.NodeCondition{Type: string(c.Type),
			Status: conditionStatuses[c.Status], Reason: c.Reason, Message: c.Message,
			LastTransitionTime: timestamp(c.LastTransitionTime)})
	}
	for _, addr := range st.Addresses {
		out.Addresses = append(out.Addresses, &v1.NodeAddress{Type: string(addr.Type), Address: addr.Address})
	}
	info := st.NodeInfo
	out.SystemInfo = &v1.NodeSystemInfo{OperatingSystem: info.OperatingSystem, Architecture: info.Architecture,
		KernelVersion: info.KernelVersion, OsImage: info.OSImage,
		ContainerRuntimeVersion: info.ContainerRuntimeVersion, MachineId: info.MachineID,
		SystemUuid: info.SystemUUID, BootId: info.BootID}
	return out, nil
}

func resourceMap(list corev1.ResourceList) map[string]string {
	if len(list) == 0 {
		return nil
	}
	out := make(map[string]string, len(list))
	for name, q := range list {
		out[string(name)] = q.String()
	}
	return out
}
