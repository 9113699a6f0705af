package bench

import (
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func testRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestUniformRange(t *testing.T) {
	r := testRand()
	u := Uniform{Min: 10, Max: 19}
	seen := map[int64]int{}
	for range 10000 {
		v := u.Next(r)
		if v < 10 || v > 19 {
			t.Fatalf("value %d outside [10, 19]", v)
		}
		seen[v]++
	}
	for v := int64(10); v <= 19; v++ {
		if seen[v] < 800 || seen[v] > 1200 {
			t.Errorf("value %d drawn %d times of 10000, want about 1000", v, seen[v])
		}
	}
}

func TestZipfianRangeAndSkew(t *testing.T) {
	const n, draws = 1000, 200000
	r := testRand()
	z := NewZipfian(0, n-1, 0.99)
	counts := make([]int, n)
	for range draws {
		v := z.Next(r)
		if v < 0 || v >= n {
			t.Fatalf("value %d outside [0, %d)", v, n)
		}
		counts[v]++
	}
	// Item 0 has probability 1/zeta(n); for n=1000, theta=0.99 that is about 0.134.
	p0 := float64(counts[0]) / draws
	want := 1 / zeta(0, n, 0.99, 0)
	if p0 < want*0.9 || p0 > want*1.1 {
		t.Errorf("P(0) = %.4f, want about %.4f", p0, want)
	}
	// Popularity falls with rank: the first ten items beat the next ten, which beat items 100-109.
	sum := func(a, b int) (s int) {
		for _, c := range counts[a:b] {
			s += c
		}
		return s
	}
	if !(sum(0, 10) > sum(10, 20) && sum(10, 20) > sum(100, 110)) {
		t.Errorf("not skewed: %d, %d, %d", sum(0, 10), sum(10, 20), sum(100, 110))
	}
	// The top 10% of items take most draws (about 70% for theta 0.99).
	if top := float64(sum(0, n/10)) / draws; top < 0.6 {
		t.Errorf("top 10%% of items drew %.2f of the draws, want > 0.6", top)
	}
}

func TestZipfianGrowsItemCount(t *testing.T) {
	r := testRand()
	z := NewZipfian(0, 9, 0.99)
	var beyond int
	for range 10000 {
		v := z.NextN(r, 1000)
		if v < 0 || v >= 1000 {
			t.Fatalf("value %d outside [0, 1000)", v)
		}
		if v >= 10 {
			beyond++
		}
	}
	if beyond == 0 {
		t.Fatal("a grown generator never drew beyond its original items")
	}
	if got, want := z.state.Load().zetan, zeta(0, 1000, 0.99, 0); got < want*0.999999 || got > want*1.000001 {
		t.Fatalf("incremental zeta %v, want %v", got, want)
	}
}

func TestScrambledZipfianRangeAndSkew(t *testing.T) {
	const lo, hi, draws = 100, 10099, 200000
	r := testRand()
	s := NewScrambledZipfian(lo, hi, 0.99)
	counts := map[int64]int{}
	for range draws {
		v := s.Next(r)
		if v < lo || v > hi {
			t.Fatalf("value %d outside [%d, %d]", v, lo, hi)
		}
		counts[v]++
	}
	freq := make([]int, 0, len(counts))
	for _, c := range counts {
		freq = append(freq, c)
	}
	slices.Sort(freq)
	slices.Reverse(freq)
	top := 0
	for _, c := range freq[:100] { // the 1% most popular keys
		top += c
	}
	if share := float64(top) / draws; share < 0.2 {
		t.Errorf("the 1%% most popular keys drew %.2f of the draws, want a skew (> 0.2)", share)
	}
	// Scrambled: the most popular key is not simply the lowest.
	low := 0
	for v := int64(lo); v < lo+100; v++ {
		low += counts[v]
	}
	if low >= top {
		t.Errorf("the lowest 100 keys drew as much as the most popular 100 (%d vs %d): not scrambled", low, top)
	}
	// Another constant sums its own zeta and still stays in range.
	o := NewScrambledZipfian(0, 99, 0.5)
	for range 1000 {
		if v := o.Next(r); v < 0 || v > 99 {
			t.Fatalf("theta 0.5: value %d outside [0, 99]", v)
		}
	}
}

func TestFNVHash64MatchesFNV1a(t *testing.T) {
	r := testRand()
	for range 1000 {
		v := r.Uint64()
		h := fnv.New64a()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		h.Write(b[:])
		want := h.Sum64()
		if int64(want) < 0 {
			want = -want
		}
		want &^= 1 << 63
		if got := fnvHash64(v); got != want {
			t.Fatalf("fnvHash64(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestSkewedLatestFavoursNewest(t *testing.T) {
	r := testRand()
	c := NewAckCounter(1000)
	g := NewSkewedLatest(c, 0.99)
	counts := map[int64]int{}
	for range 50000 {
		v := g.Next(r)
		if v < 0 || v > 999 {
			t.Fatalf("value %d outside [0, 999]", v)
		}
		counts[v]++
	}
	if counts[999] <= counts[998] || counts[998] <= counts[900] {
		t.Errorf("newest not most popular: P(999)=%d P(998)=%d P(900)=%d", counts[999], counts[998], counts[900])
	}
	// New acknowledged inserts become the most popular.
	for range 10 {
		c.Ack(c.Next())
	}
	counts = map[int64]int{}
	for range 50000 {
		v := g.Next(r)
		if v > 1009 {
			t.Fatalf("value %d beyond the last acknowledged insert 1009", v)
		}
		counts[v]++
	}
	if counts[1009] <= counts[999] {
		t.Errorf("after inserts the newest record 1009 drew %d, record 999 %d", counts[1009], counts[999])
	}
}

func TestAckCounterLastIsContiguous(t *testing.T) {
	c := NewAckCounter(10)
	if c.Last() != 9 {
		t.Fatalf("Last = %d, want 9", c.Last())
	}
	a, b, d := c.Next(), c.Next(), c.Next() // 10, 11, 12
	c.Ack(d)
	c.Ack(b)
	if c.Last() != 9 {
		t.Fatalf("Last = %d before 10 is acknowledged, want 9", c.Last())
	}
	c.Ack(a)
	if c.Last() != 12 {
		t.Fatalf("Last = %d, want 12", c.Last())
	}
	// Concurrent use ends with every value acknowledged.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Ack(c.Next())
			}
		})
	}
	wg.Wait()
	if c.Last() != 12+8000 {
		t.Fatalf("Last = %d, want %d", c.Last(), 12+8000)
	}
}
