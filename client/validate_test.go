package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/clover-kv/clover/internal/keys"
)

// Keys, values and batches over the limits fail with ErrInvalidArgument in
// the client: the node never sees them.
func TestValidationWithoutContactingTheNode(t *testing.T) {
	node := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, Config{Insecure: true, Endpoints: []string{node.addr}, Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	okKey := []byte("k")
	longKey := bytes.Repeat([]byte("k"), keys.MaxKeyBytes+1)
	bigValue := make([]byte, keys.MaxValueBytes+1)
	maxValue := make([]byte, keys.MaxValueBytes)
	tooManyOps := make([]Op, keys.MaxBatchOps+1)
	for i := range tooManyOps {
		tooManyOps[i] = PutOp([]byte(fmt.Sprintf("k%d", i)), nil)
	}
	// Five values of 1 MiB each: every value is within its limit, the batch is not.
	var tooBig []Op
	for i := 0; i < 5; i++ {
		tooBig = append(tooBig, PutOp([]byte(fmt.Sprintf("k%d", i)), maxValue))
	}

	cases := []struct {
		name string
		call func() error
	}{
		{"put empty key", func() error { _, err := c.Put(ctx, "ks", nil, []byte("v")); return err }},
		{"put long key", func() error { _, err := c.Put(ctx, "ks", longKey, []byte("v")); return err }},
		{"put big value", func() error { _, err := c.Put(ctx, "ks", okKey, bigValue); return err }},
		{"get long key", func() error { _, err := c.Get(ctx, "ks", longKey); return err }},
		{"get empty key", func() error { _, err := c.Get(ctx, "ks", []byte{}); return err }},
		{"delete long key", func() error { _, err := c.Delete(ctx, "ks", longKey); return err }},
		{"cas long key", func() error { _, err := c.CompareAndSwap(ctx, "ks", longKey, 1, nil); return err }},
		{"cas big value", func() error { _, err := c.CompareAndSwap(ctx, "ks", okKey, 1, bigValue); return err }},
		{"compare-and-delete empty key", func() error { _, err := c.CompareAndDelete(ctx, "ks", nil, 1); return err }},
		{"empty batch", func() error { _, err := c.Batch(ctx, "ks"); return err }},
		{"batch with a long key", func() error {
			_, err := c.Batch(ctx, "ks", PutOp(okKey, nil), DeleteOp(longKey))
			return err
		}},
		{"batch with a big value", func() error { _, err := c.Batch(ctx, "ks", PutOp(okKey, bigValue)); return err }},
		{"batch with too many ops", func() error { _, err := c.Batch(ctx, "ks", tooManyOps...); return err }},
		{"batch with too many bytes", func() error { _, err := c.Batch(ctx, "ks", tooBig...); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("got %v, want ErrInvalidArgument", err)
			}
			if n := node.kvCalls(); n != 0 {
				t.Fatalf("the node saw %d call(s)", n)
			}
		})
	}

	// At the limits, requests do reach the node.
	maxKey := bytes.Repeat([]byte("k"), keys.MaxKeyBytes)
	if _, err := c.Put(ctx, "ks", maxKey, maxValue); err != nil {
		t.Fatalf("put at the limits: %v", err)
	}
	if _, err := c.Batch(ctx, "ks", tooManyOps[:keys.MaxBatchOps]...); err != nil {
		t.Fatalf("batch of %d ops: %v", keys.MaxBatchOps, err)
	}
	if n := node.kvCalls(); n != 2 {
		t.Fatalf("the node saw %d calls, want 2", n)
	}
}

func TestNewWithoutEndpoints(t *testing.T) {
	if _, err := New(context.Background(), Config{}); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("got %v, want ErrNoEndpoints", err)
	}
}
