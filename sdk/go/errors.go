package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors a Provider wraps to choose the gRPC code of its answer
// (spec.md §7). Wrap them with context for the operator:
//
//	return fmt.Errorf("pod %s/%s: %w", ref.Namespace, ref.Name, sdk.ErrNotFound)
//
// The RPC then fails with that code and the whole error text as message.
var (
	// ErrInvalidArgument: the request can never succeed; for CreatePod, a pod
	// the backend can never run (the host fails the pod with the message).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: unknown pod or container.
	ErrNotFound = errors.New("not found")
	// ErrFailedPrecondition: the pod or container is not in a state for this
	// (exec into a terminated container).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrResourceExhausted: the backend is out of capacity now; the host
	// retries with backoff.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrUnavailable: a transient failure (backend unreachable); the host
	// retries with backoff.
	ErrUnavailable = errors.New("unavailable")
	// ErrUnimplemented: the operation is not implemented by this plugin.
	ErrUnimplemented = errors.New("not implemented")
	// ErrPermissionDenied: the backend refused the plugin's credentials.
	ErrPermissionDenied = errors.New("permission denied")
)

// errorCodes maps sentinels (and the context errors) to gRPC codes; the
// first match in errors.Is order wins.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalidArgument, codes.InvalidArgument},
	{ErrNotFound, codes.NotFound},
	{ErrFailedPrecondition, codes.FailedPrecondition},
	{ErrResourceExhausted, codes.ResourceExhausted},
	{ErrUnavailable, codes.Unavailable},
	{ErrUnimplemented, codes.Unimplemented},
	{ErrPermissionDenied, codes.PermissionDenied},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// StatusError converts a Provider error into the error a gRPC handler
// returns: nil stays nil, a gRPC status error (also wrapped) passes through,
// a wrapped sentinel gets its code, and anything else is UNKNOWN, which the
// host treats as transient.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	for _, entry := range errorCodes {
		if errors.Is(err, entry.err) {
			return status.Error(entry.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// unimplemented is the answer of every UnimplementedProvider method, naming
// the RPC so the author sees which method is missing.
func unimplemented(rpc string) error {
	return fmt.Errorf("%s is not implemented by this plugin: %w", rpc, ErrUnimplemented)
}
