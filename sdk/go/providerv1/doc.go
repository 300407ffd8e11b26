// Package providerv1 holds the Go stubs of the vkhost provider protocol v1
// (proto/vkhost/provider/v1): messages, and the gRPC clients and servers of
// the Identity, Node, Pods, Streams and Stats services.
//
// The *.pb.go files are generated and committed. After editing a .proto file,
// run `go generate ./...` in sdk/go (needs protoc; the generators are pinned
// in go.mod); the go_sdk.generated_up_to_date test fails until the committed
// files match the protos. Plugin authors normally use package sdk instead of
// the raw servers.
package providerv1

//go:generate ../generate.sh
