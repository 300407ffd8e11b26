package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// clockTicksPerSecond is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicksPerSecond = 100

// GetStatsSummary reports, per pod and container, the CPU time and resident
// memory of each container's main process (read from /proc; children of
// that process are not counted), and the machine's memory for the node.
func (p *ShellProvider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	now := metav1.Now()
	summary := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: "vkshell", StartTime: now}}
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) == nil {
		total := info.Totalram * uint64(info.Unit)
		free := info.Freeram * uint64(info.Unit)
		used := total - free
		summary.Node.Memory = &statsv1alpha1.MemoryStats{Time: now, AvailableBytes: &free, UsageBytes: &used,
			WorkingSetBytes: &used}
	}
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.pods))
	for _, run := range p.pods {
		runs = append(runs, run)
	}
	p.mu.Unlock()
	for _, run := range runs {
		summary.Pods = append(summary.Pods, run.stats(now))
	}
	return summary, nil
}

// stats samples the pod's running processes.
func (r *podRun) stats(now metav1.Time) statsv1alpha1.PodStats {
	r.p.mu.Lock()
	ref := statsv1alpha1.PodReference{Name: r.pod.Name, Namespace: r.pod.Namespace, UID: string(r.pod.UID)}
	start := *r.pod.Status.StartTime
	r.p.mu.Unlock()
	pod := statsv1alpha1.PodStats{PodRef: ref, StartTime: start}
	var cpuTotal, memTotal uint64
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, inst := range r.instances {
		cpu, mem, err := sampleProcess(inst.cmd.Process.Pid)
		if err != nil {
			continue // exited since; the next sample will not list it
		}
		cpuTotal += cpu
		memTotal += mem
		pod.Containers = append(pod.Containers, statsv1alpha1.ContainerStats{Name: name, StartTime: start,
			CPU:    &statsv1alpha1.CPUStats{Time: now, UsageCoreNanoSeconds: ptr(cpu)},
			Memory: &statsv1alpha1.MemoryStats{Time: now, WorkingSetBytes: ptr(mem), RSSBytes: ptr(mem)}})
	}
	pod.CPU = &statsv1alpha1.CPUStats{Time: now, UsageCoreNanoSeconds: &cpuTotal}
	pod.Memory = &statsv1alpha1.MemoryStats{Time: now, WorkingSetBytes: &memTotal, RSSBytes: &memTotal}
	return pod
}

// sampleProcess returns a process's CPU time (user + system, in
// core-nanoseconds) and resident set size in bytes.
func sampleProcess(pid int) (cpuNanos, rssBytes uint64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may contain spaces; fields resume after ')'.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	fields := strings.Fields(rest)
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15, rss 24.
	if len(fields) < 22 {
		return 0, 0, fmt.Errorf("/proc/%d/stat has %d fields", pid, len(fields)+2)
	}
	utime, _ := strconv.ParseUint(fields[11], 10, 64)
	stime, _ := strconv.ParseUint(fields[12], 10, 64)
	rssPages, _ := strconv.ParseUint(fields[21], 10, 64)
	cpuNanos = (utime + stime) * (1e9 / clockTicksPerSecond)
	return cpuNanos, rssPages * uint64(os.Getpagesize()), nil
}
