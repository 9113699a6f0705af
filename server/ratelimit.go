package server

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// callerTable holds one token bucket per caller. A bucket is kept as the
// generic cell rate algorithm's theoretical arrival time (tat): the moment
// at which the bucket would be full again. A request at now is allowed
// when max(tat, now) + interval lies no further than burst intervals ahead
// of now, and then moves tat there: exactly a token bucket of burst tokens
// refilled at one token an interval, in one atomic word, so a busy caller's
// requests contend on a compare-and-swap rather than a lock.
type callerTable struct {
	interval int64 // nanoseconds per request
	limit    int64 // burst * interval
	epoch    time.Time

	mu        sync.RWMutex
	buckets   map[string]*bucket
	lastSweep int64 // nanoseconds since epoch
}

// bucket is one caller's token bucket.
type bucket struct {
	tat  atomic.Int64 // nanoseconds since the table's epoch
	refs atomic.Int32 // streams holding the bucket; such a bucket is never swept
}

const (
	// maxCallers bounds the table. When a sweep cannot make room, callers
	// not yet in it share one bucket (overflowCaller) until it can.
	maxCallers     = 1 << 16
	overflowCaller = "(too many callers)"
	// sweepInterval is how often idle callers are dropped; a full table
	// is swept at most once per sweepFullInterval.
	sweepInterval     = time.Minute
	sweepFullInterval = time.Second
)

// newCallerTable returns buckets of burst requests refilled at rate a
// second; rate must be positive and burst at least 1.
func newCallerTable(rate float64, burst int) *callerTable {
	interval := max(1, math.Ceil(1e9/rate))
	limit := min(float64(burst)*interval, 1<<62)
	return &callerTable{interval: int64(min(interval, 1<<62)), limit: int64(limit),
		epoch: time.Now(), buckets: map[string]*bucket{}}
}

func (t *callerTable) now() int64 { return int64(time.Since(t.epoch)) }

// allow takes one token from b, reporting whether there was one.
func (t *callerTable) allow(b *bucket) bool { return t.allowAt(b, t.now()) }

// allowAt is allow at now on the table's clock.
func (t *callerTable) allowAt(b *bucket, now int64) bool {
	for {
		tat := b.tat.Load()
		next := max(tat, now) + t.interval
		if next-now > t.limit {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// get returns key's bucket, adding it if needed.
func (t *callerTable) get(key string) *bucket {
	t.mu.RLock()
	b := t.buckets[key]
	t.mu.RUnlock()
	if b != nil {
		return b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addLocked(key)
}

// acquire returns key's bucket held for a stream: it stays in the table,
// so that every request of the caller counts against one bucket, until
// release.
func (t *callerTable) acquire(key string) *bucket {
	t.mu.RLock()
	b := t.buckets[key]
	if b != nil {
		b.refs.Add(1) // under the read lock: a sweep (write lock) sees it
	}
	t.mu.RUnlock()
	if b != nil {
		return b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b = t.addLocked(key)
	b.refs.Add(1)
	return b
}

func (t *callerTable) release(b *bucket) { b.refs.Add(-1) }

// addLocked returns key's bucket, adding a full one; t.mu is held.
func (t *callerTable) addLocked(key string) *bucket {
	if b := t.buckets[key]; b != nil {
		return b
	}
	now := t.now()
	if since := now - t.lastSweep; since >= int64(sweepInterval) ||
		len(t.buckets) >= maxCallers && since >= int64(sweepFullInterval) {
		t.sweepLocked(now)
	}
	if len(t.buckets) >= maxCallers {
		key = overflowCaller
		if b := t.buckets[key]; b != nil {
			return b
		}
	}
	b := &bucket{}
	b.tat.Store(now)
	t.buckets[key] = b
	return b
}

// sweepLocked drops the buckets that are full (their callers idle for at
// least burst intervals) and held by no stream; t.mu is held.
func (t *callerTable) sweepLocked(now int64) {
	t.lastSweep = now
	for k, b := range t.buckets {
		if b.refs.Load() == 0 && b.tat.Load() <= now {
			delete(t.buckets, k)
		}
	}
}

// size is the number of callers in the table.
func (t *callerTable) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.buckets)
}
