//go:build !linux

package vault

import "fmt"

// NewKernelCache returns the Cache kept in the kernel key retention service
// for the latch home whose CacheScope is scope, or an error wrapping
// ErrNoCache when the kernel refuses keyctl here — always, off Linux.
func NewKernelCache(scope string) (Cache, error) {
	return nil, fmt.Errorf("kernel keyring: only Linux has one: %w", ErrNoCache)
}
