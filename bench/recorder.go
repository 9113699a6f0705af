package bench

import (
	"errors"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1µs to 10 minutes with three
// significant digits; longer latencies are recorded as 10 minutes.
const (
	histMinUs   = 1
	histMaxUs   = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinUs, histMaxUs, histSigFigs)
}

func recordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := min(max(d.Microseconds(), histMinUs), histMaxUs)
	_ = h.RecordValue(us) // in range by construction
}

// opCounts counts one operation type's outcomes.
type opCounts struct {
	// done counts every finished operation, warm-up included.
	done int64
	// ok, errors and notFound count measured operations only.
	ok, errors, notFound int64
}

func (c *opCounts) add(o opCounts) {
	c.done += o.done
	c.ok += o.ok
	c.errors += o.errors
	c.notFound += o.notFound
}

// opSet is a histogram and counts per operation type.
type opSet struct {
	hist   [numOps]*hdrhistogram.Histogram
	counts [numOps]opCounts
}

func newOpSet() *opSet {
	s := &opSet{}
	for i := range s.hist {
		s.hist[i] = newHistogram()
	}
	return s
}

// add merges o into s.
func (s *opSet) add(o *opSet) {
	for op := range numOps {
		if o.hist[op].TotalCount() > 0 {
			s.hist[op].Merge(o.hist[op])
		}
		s.counts[op].add(o.counts[op])
	}
}

func (s *opSet) reset() {
	for op := range numOps {
		if s.hist[op].TotalCount() > 0 {
			s.hist[op].Reset()
		}
		s.counts[op] = opCounts{}
	}
}

// done counts every finished operation in the set.
func (s *opSet) done() int64 {
	var n int64
	for _, c := range s.counts {
		n += c.done
	}
	return n
}

// recorder collects the workers' outcomes in a few locked shards (workers
// map to shards by number), so that workers rarely contend and the
// collector drains a handful of histograms rather than one per worker.
type recorder struct {
	shards []recorderShard
}

type recorderShard struct {
	mu  sync.Mutex
	cur *opSet // filled by workers
	_   [48]byte
}

func newRecorder(shards int) *recorder {
	r := &recorder{shards: make([]recorderShard, shards)}
	for i := range r.shards {
		r.shards[i].cur = newOpSet()
	}
	return r
}

// record notes one finished operation of a worker. Unmeasured (warm-up)
// operations are only counted as done. Successful and not-found operations
// have their latency recorded; failed ones are counted as errors.
func (r *recorder) record(worker int, op Op, latency time.Duration, err error, measured bool) {
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	c := &s.cur.counts[op]
	c.done++
	if measured {
		switch {
		case err == nil:
			c.ok++
			recordLatency(s.cur.hist[op], latency)
		case errors.Is(err, ErrNotFound):
			c.notFound++
			recordLatency(s.cur.hist[op], latency)
		default:
			c.errors++
		}
	}
	s.mu.Unlock()
}

// drain moves everything recorded since the last drain into dst. spare is
// an empty set that a shard takes in exchange for its full one, so workers
// wait only for a pointer swap; drain returns the set left over for the
// next call.
func (r *recorder) drain(dst, spare *opSet) *opSet {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		full := s.cur
		s.cur = spare
		s.mu.Unlock()
		dst.add(full)
		full.reset()
		spare = full
	}
	return spare
}
