// Package vkadapter runs an existing virtual-kubelet provider as a vkhost
// plugin, unchanged.
//
// A virtual-kubelet provider (github.com/virtual-kubelet/virtual-kubelet,
// v1.14) is a Go value implementing node.PodLifecycleHandler and, usually,
// node.PodNotifier and the extra methods of nodeutil.Provider. [New] wraps
// such a value into an [sdk.Provider]; serve it with the Go SDK:
//
//	func main() {
//		p := myprovider.New(...)                       // unchanged virtual-kubelet provider
//		os.Exit(sdk.ServeMain(vkadapter.New(p, vkadapter.Options{Name: "mine"})))
//	}
//
// The adapter translates both ways: vkhost pods into corev1.Pod (from the
// pod JSON the host sends, with the host's resolved env, command and args
// laid over it), corev1.PodStatus into vkhost statuses (container statuses
// reordered into spec order, missing ones reported as waiting), NotifyPods
// callbacks into WatchPodStatus events, and the logs, exec, attach,
// port-forward and stats streams into virtual-kubelet's io types
// (api.AttachIO, io.ReadCloser, io.ReadWriteCloser). Optional methods are
// found by type assertion, and the capabilities the adapter lists follow from
// what the provider has; see README.md for the table and for what does not
// translate.
//
// The interfaces below restate virtual-kubelet's method sets so the adapter
// does not import its node and nodeutil packages (and with them client-go
// informers); Go interfaces are structural, so any node.PodLifecycleHandler
// is a PodLifecycleHandler here.
//
// Concurrency: the adapter calls the provider concurrently, as
// virtual-kubelet's pod controller does; the provider must be safe for
// concurrent use (virtual-kubelet requires that too).
package vkadapter
