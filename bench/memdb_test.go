package bench

import (
	"context"
	"slices"
	"sync"
)

// memDB is an in-memory DB for tests: a map, scans over its sorted keys.
type memDB struct {
	mu    sync.Mutex
	data  map[string][]byte
	calls int
}

func newMemDB() *memDB { return &memDB{data: map[string][]byte{}} }

func (m *memDB) Read(_ context.Context, key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if _, ok := m.data[string(key)]; !ok {
		return ErrNotFound
	}
	return nil
}

func (m *memDB) Put(_ context.Context, key, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	m.data[string(key)] = slices.Clone(value)
	return nil
}

func (m *memDB) Scan(_ context.Context, start []byte, n int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	found := 0
	for k := range m.data {
		if k >= string(start) {
			found++
		}
	}
	return min(found, n), nil
}

func (m *memDB) Close() error { return nil }
