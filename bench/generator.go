package bench

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// IntGenerator draws integers. Implementations are safe for concurrent use;
// each goroutine passes its own random source.
type IntGenerator interface {
	Next(r *rand.Rand) int64
}

// Uniform draws uniformly from [Min, Max].
type Uniform struct{ Min, Max int64 }

// Next implements IntGenerator.
func (u Uniform) Next(r *rand.Rand) int64 { return u.Min + r.Int64N(u.Max-u.Min+1) }

// Zipfian draws from [min, max] with a Zipfian distribution: min is the most
// popular value, min+1 the next, and so on. It is YCSB's ZipfianGenerator,
// the algorithm of Gray et al., "Quickly Generating Billion-Record Synthetic
// Databases" (SIGMOD 1994). The item count may grow after construction
// (NextN); zeta is then extended incrementally.
type Zipfian struct {
	base                     int64
	items                    int64
	theta, alpha, zeta2theta float64
	halfPowTheta             float64 // 0.5^theta

	mu    sync.Mutex // serialises growth
	state atomic.Pointer[zipfianState]
}

// zipfianState is the part of a Zipfian that depends on the item count.
type zipfianState struct {
	count      int64
	zetan, eta float64
}

// NewZipfian returns a Zipfian generator over [min, max] with the given
// constant (YCSB's zipfianconstant, 0.99 by default). Building it sums max-min+1
// terms.
func NewZipfian(min, max int64, theta float64) *Zipfian {
	items := max - min + 1
	return newZipfianZeta(min, items, theta, zeta(0, items, theta, 0))
}

func newZipfianZeta(base, items int64, theta, zetan float64) *Zipfian {
	z := &Zipfian{base: base, items: items, theta: theta, alpha: 1 / (1 - theta),
		zeta2theta: zeta(0, 2, theta, 0), halfPowTheta: math.Pow(0.5, theta)}
	z.state.Store(z.newState(items, zetan))
	return z
}

func (z *Zipfian) newState(n int64, zetan float64) *zipfianState {
	eta := (1 - math.Pow(2/float64(n), 1-z.theta)) / (1 - z.zeta2theta/zetan)
	return &zipfianState{count: n, zetan: zetan, eta: eta}
}

// zeta returns initial + sum_{i=st}^{n-1} 1/(i+1)^theta.
func zeta(st, n int64, theta, initial float64) float64 {
	sum := initial
	for i := st; i < n; i++ {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// Next implements IntGenerator over the generator's own item count.
func (z *Zipfian) Next(r *rand.Rand) int64 { return z.NextN(r, z.items) }

// NextN draws from the n most popular items: [min, min+n). A larger n than
// seen before extends zeta; a smaller one reuses the larger count's zeta, as
// YCSB does.
func (z *Zipfian) NextN(r *rand.Rand, n int64) int64 {
	if n < 2 {
		return z.base
	}
	st := z.state.Load()
	if n > st.count {
		st = z.grow(n)
	}
	u := r.Float64()
	uz := u * st.zetan
	if uz < 1 {
		return z.base
	}
	if uz < 1+z.halfPowTheta {
		return z.base + 1
	}
	v := int64(float64(n) * math.Pow(st.eta*u-st.eta+1, z.alpha))
	return z.base + min(v, n-1)
}

func (z *Zipfian) grow(n int64) *zipfianState {
	z.mu.Lock()
	defer z.mu.Unlock()
	st := z.state.Load()
	if n <= st.count {
		return st
	}
	st = z.newState(n, zeta(st.count, n, z.theta, st.zetan))
	z.state.Store(st)
	return st
}

// YCSB's scrambled Zipfian draws from a fixed space of 10^10 items whose zeta
// for the default constant 0.99 is precomputed.
const (
	scrambledItemCount = 10_000_000_000
	scrambledZetan     = 26.46902820178302
	defaultZipfian     = 0.99
)

// ScrambledZipfian draws from [min, max] with Zipfian popularity, but the
// popular values are spread over the range by hashing instead of clustering
// at min. It is YCSB's ScrambledZipfianGenerator (the "zipfian" request
// distribution). With a constant other than 0.99 it sums zeta over the
// range instead of using YCSB's precomputed value.
type ScrambledZipfian struct {
	min, count int64
	gen        *Zipfian
}

// NewScrambledZipfian returns a scrambled Zipfian generator over [min, max].
func NewScrambledZipfian(min, max int64, theta float64) *ScrambledZipfian {
	count := max - min + 1
	var gen *Zipfian
	if theta == defaultZipfian {
		gen = newZipfianZeta(0, scrambledItemCount, theta, scrambledZetan)
	} else {
		gen = NewZipfian(0, count-1, theta)
	}
	return &ScrambledZipfian{min: min, count: count, gen: gen}
}

// Next implements IntGenerator.
func (s *ScrambledZipfian) Next(r *rand.Rand) int64 {
	return s.min + int64(fnvHash64(uint64(s.gen.Next(r)))%uint64(s.count))
}

// fnvHash64 is YCSB's Utils.fnvhash64: FNV-1a over the 8 bytes of v, least
// significant first, with the sign bit cleared.
func fnvHash64(v uint64) uint64 {
	const offset, prime = 0xCBF29CE484222325, 1099511628211
	h := uint64(offset)
	for range 8 {
		h ^= v & 0xff
		h *= prime
		v >>= 8
	}
	if int64(h) < 0 {
		h = -h
	}
	return h &^ (1 << 63)
}

// SkewedLatest draws record numbers in [0, latest] where latest is the last
// acknowledged insert, with Zipfian popularity counted back from latest: the
// newest records are the most popular. It is YCSB's SkewedLatestGenerator
// (the "latest" request distribution).
type SkewedLatest struct {
	basis *AckCounter
	zipf  *Zipfian
}

// NewSkewedLatest returns a generator following basis's last acknowledged value.
func NewSkewedLatest(basis *AckCounter, theta float64) *SkewedLatest {
	n := max(basis.Last()+1, 2)
	return &SkewedLatest{basis: basis, zipf: NewZipfian(0, n-1, theta)}
}

// Next implements IntGenerator.
func (s *SkewedLatest) Next(r *rand.Rand) int64 {
	last := s.basis.Last()
	if last < 0 {
		return 0
	}
	return last - s.zipf.NextN(r, last+1)
}

// Counter hands out consecutive integers from a start value.
type Counter struct{ next atomic.Int64 }

// NewCounter returns a counter whose first value is start.
func NewCounter(start int64) *Counter {
	c := &Counter{}
	c.next.Store(start)
	return c
}

// Next returns the next value.
func (c *Counter) Next() int64 { return c.next.Add(1) - 1 }

// AckCounter hands out consecutive integers, like Counter, and tracks which
// have been acknowledged: Last is the highest value below which every value
// has been acknowledged. The run phase numbers inserts with it, so that reads
// only pick records whose insert has finished (YCSB's
// AcknowledgedCounterGenerator).
type AckCounter struct {
	next atomic.Int64
	last atomic.Int64

	mu      sync.Mutex
	pending map[int64]struct{} // acknowledged values above last+1
}

// NewAckCounter returns a counter whose first value is start; Last starts at
// start-1.
func NewAckCounter(start int64) *AckCounter {
	c := &AckCounter{pending: map[int64]struct{}{}}
	c.next.Store(start)
	c.last.Store(start - 1)
	return c
}

// Next returns the next value.
func (c *AckCounter) Next() int64 { return c.next.Add(1) - 1 }

// Ack acknowledges v, a value Next returned.
func (c *AckCounter) Ack(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := c.last.Load()
	if v != last+1 {
		if v > last {
			c.pending[v] = struct{}{}
		}
		return
	}
	last = v
	for {
		if _, ok := c.pending[last+1]; !ok {
			break
		}
		delete(c.pending, last+1)
		last++
	}
	c.last.Store(last)
}

// Last returns the highest value below which all values are acknowledged.
func (c *AckCounter) Last() int64 { return c.last.Load() }
