package server_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
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

// loadRecords writes n records of size bytes with concurrent writers.
func loadRecords(b *testing.B, cl *client.Client, ks string, n, size int) {
	value := make([]byte, size)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				if _, err := cl.Put(context.Background(), ks, []byte(fmt.Sprintf("rec-%010d", i)), value); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkMigrateOffNode moves a keyspace of 100,000 records of 256 B off
// the US node (policy anywhere -> EEA) on the 4-node demo topology and
// reports the time until every shard is on 3 EEA replicas and the bytes the
// Raft transport carried meanwhile.
//
//	go test ./server -run '^$' -bench MigrateOffNode -benchtime 1x
func BenchmarkMigrateOffNode(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := testcluster.Start(b, testcluster.DemoNodes(), fastHealing)
		ctx := context.Background()
		cl := c.Client(b)
		if _, err := cl.CreateKeyspace(ctx, "videos", 4, client.Policy{Replicas: 3, Class: "public"}); err != nil {
			b.Fatal(err)
		}
		loadRecords(b, cl, "videos", 100000, 256)
		before := c.Net.Bytes("", "")
		start := time.Now()
		if _, err := cl.SetPolicy(ctx, "videos", client.Policy{AllowJurisdictions: []string{"EEA"}}); err != nil {
			b.Fatal(err)
		}
		c.WaitFor(5*time.Minute, "migration", func() bool { return shardsConform(ctx, cl, "videos", 3, "us-1") })
		elapsed := time.Since(start)
		moved := c.Net.Bytes("", "") - before
		b.ReportMetric(elapsed.Seconds(), "s-to-migrate")
		b.ReportMetric(float64(moved)/(1<<20), "MiB-moved")
		c.Close()
	}
}

// BenchmarkHealAfterNodeLoss stops one node of a 5-node EEA cluster holding
// 8 shards x 3 replicas (10,000 records of 256 B) and reports the time until
// every shard is back on 3 live replicas, with a 1 s dead-node grace.
//
//	go test ./server -run '^$' -bench HealAfterNodeLoss -benchtime 1x
func BenchmarkHealAfterNodeLoss(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := testcluster.Start(b, fiveEEANodes(), fastHealing)
		ctx := context.Background()
		cl := c.Client(b)
		if _, err := cl.CreateKeyspace(ctx, "users", 8, eea); err != nil {
			b.Fatal(err)
		}
		loadRecords(b, cl, "users", 10000, 256)
		ks, err := cl.Keyspace(ctx, "users")
		if err != nil {
			b.Fatal(err)
		}
		victim := ks.Shards[0].Replicas[0]
		start := time.Now()
		c.StopNode(victim)
		cl2 := c.Client(b)
		c.WaitFor(5*time.Minute, "healing", func() bool { return shardsConform(ctx, cl2, "users", 3, victim) })
		b.ReportMetric(time.Since(start).Seconds(), "s-to-heal")
		c.Close()
	}
}

// runConcurrent spreads b.N operations over n goroutines and reports ops/s.
func runConcurrent(b *testing.B, n int, op func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// BenchmarkConcurrent measures writes and reads (linearizable and follower)
// from 64 concurrent callers sharing one client against a 3-node EEA
// cluster on loopback (in-process nodes), 16 B keys and 256 B values.
//
//	go test ./server -run '^$' -bench Concurrent -benchtime 20000x
func BenchmarkConcurrent(b *testing.B) {
	c := testcluster.Start(b, threeEEANodes())
	ctx := context.Background()
	cl := c.Client(b)
	if _, err := cl.CreateKeyspace(ctx, "users", benchShards(), eea); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 256)
	key := func(i int) []byte { return []byte(fmt.Sprintf("key-%012d", i%10000)) }
	for i := 0; i < 10000; i++ {
		if _, err := cl.Put(ctx, "users", key(i), value); err != nil {
			b.Fatal(err)
		}
	}
	for _, clients := range []int{64, 256} {
		b.Run(fmt.Sprintf("put/clients=%d", clients), func(b *testing.B) {
			runConcurrent(b, clients, func(i int) error {
				_, err := cl.Put(ctx, "users", key(i), value)
				return err
			})
		})
	}
	b.Run("get-linearizable/clients=64", func(b *testing.B) {
		runConcurrent(b, 64, func(i int) error {
			_, err := cl.Get(ctx, "users", key(i))
			return err
		})
	})
	b.Run("get-follower/clients=64", func(b *testing.B) {
		runConcurrent(b, 64, func(i int) error {
			_, err := cl.Get(ctx, "users", key(i), client.Follower(100*time.Millisecond))
			return err
		})
	})
}

// benchShards is the shard count of BenchmarkConcurrent's keyspace:
// CLOVER_BENCH_SHARDS, default 8.
func benchShards() int {
	if n, err := strconv.Atoi(os.Getenv("CLOVER_BENCH_SHARDS")); err == nil && n > 0 {
		return n
	}
	return 8
}
