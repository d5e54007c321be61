package vault

import (
	"context"
	"fmt"
	"sync"
)

// memorySecrets keeps secrets in process memory only: for the demo and tests.
type memorySecrets struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemory returns an empty in-memory Secrets, safe for concurrent use.
// Nothing it holds survives the process.
func NewMemory() Secrets {
	return &memorySecrets{m: make(map[string][]byte)}
}

func (s *memorySecrets) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("secret %q: %w", key, ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (s *memorySecrets) Set(ctx context.Context, key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

func (s *memorySecrets) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}
