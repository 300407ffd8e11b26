package vkadapter

import (
	"errors"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"

	sdk "github.com/vkhost/vkhost/sdk/go"
)

// classified is a provider error with the SDK sentinel that chooses its gRPC
// code; its text stays the provider's.
type classified struct {
	err  error
	kind error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.kind} }

// fromProvider maps virtual-kubelet's error classes (package errdefs) to the
// SDK's: not found → NOT_FOUND, invalid input → INVALID_ARGUMENT. Other
// errors pass through (gRPC status errors keep their code; the rest become
// UNKNOWN, which the host retries).
func fromProvider(err error) error {
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return &classified{err, sdk.ErrNotFound}
	case errdefs.IsInvalidInput(err):
		return &classified{err, sdk.ErrInvalidArgument}
	}
	return err
}

// isNotFound reports whether a provider error means "no such pod".
func isNotFound(err error) bool {
	return errdefs.IsNotFound(err) || errors.Is(err, sdk.ErrNotFound)
}
