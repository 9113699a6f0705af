package server_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/testcluster"
)

// BenchmarkSingleClientPut measures one client writing 16 B keys and 256 B
// values, one at a time, to a 3-node EEA cluster on loopback (in-process
// nodes). It reports the median and p99 latency of acknowledged writes.
//
//	go test ./server -run '^$' -bench SingleClientPut -benchtime 3000x
func BenchmarkSingleClientPut(b *testing.B) {
	c := testcluster.Start(b, threeEEANodes())
	ctx := context.Background()
	cl := c.Client(b)
	if _, err := cl.CreateKeyspace(ctx, "users", 8, eea); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 256)
	lat := make([]time.Duration, 0, b.N)
	// Warm up routes and connections.
	for i := 0; i < 200; i++ {
		if _, err := cl.Put(ctx, "users", []byte(fmt.Sprintf("warmup-%09d", i)), value); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := []byte(fmt.Sprintf("key-%012d", i)) // 16 bytes
		start := time.Now()
		if _, err := cl.Put(ctx, "users", key, value); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
