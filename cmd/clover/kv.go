package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/clover-kv/clover/client"
)

func newKVCmd(g *globals) *cobra.Command {
	kv := &cobra.Command{Use: "kv", Short: "Read and write keys: put, get, del, cas, scan"}
	kv.AddCommand(kvPut(g), kvGet(g), kvDel(g), kvCAS(g), kvScan(g))
	return kv
}

func kvPut(g *globals) *cobra.Command {
	var valueFile string
	cmd := &cobra.Command{
		Use:   "put KEYSPACE KEY [VALUE]",
		Short: "Write a value (VALUE - reads standard input; or --value-file)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			val, err := readValue(cmd, args[2:], valueFile)
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			v, err := c.Put(ctx, args[0], []byte(args[1]), val)
			if err != nil {
				return writeErr(err)
			}
			return g.showVersion(v)
		},
	}
	valueFlag(cmd, &valueFile)
	return cmd
}

// showVersion prints the version a write made.
func (g *globals) showVersion(v uint64) error {
	if g.output == "json" {
		return g.printJSON(jsonVersion{Version: v})
	}
	fmt.Fprintf(g.out, "OK version %d\n", v)
	return nil
}

func kvGet(g *globals) *cobra.Command {
	var follower time.Duration
	cmd := &cobra.Command{
		Use: "get KEYSPACE KEY", Short: "Read a key (linearizable unless --follower)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			var opts []client.ReadOption
			if follower > 0 {
				opts = append(opts, client.Follower(follower))
			}
			kv, err := c.Get(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return err
			}
			return g.showKV(kv)
		},
	}
	cmd.Flags().DurationVar(&follower, "follower", 0, "serve from any permitted replica no staler than this (e.g. 1s)")
	return cmd
}

// showKV prints one key, its value and version.
func (g *globals) showKV(kv client.KV) error {
	if g.output == "json" {
		return g.printJSON(kvJSON(kv))
	}
	return g.kvTable([]client.KV{kv})
}

func kvDel(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "del KEYSPACE KEY", Short: "Delete a key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			v, err := c.Delete(ctx, args[0], []byte(args[1]))
			if err != nil {
				return writeErr(err)
			}
			return g.showVersion(v)
		},
	}
}

func kvCAS(g *globals) *cobra.Command {
	var valueFile string
	cmd := &cobra.Command{
		Use:   "cas KEYSPACE KEY EXPECTED_VERSION [VALUE]",
		Short: "Write only if the key's version matches (0: key must not exist)",
		Args:  cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			expected, err := strconv.ParseUint(args[2], 10, 64)
			if err != nil {
				return fmt.Errorf("%w: EXPECTED_VERSION %q is not a number", errUsage, args[2])
			}
			val, err := readValue(cmd, args[3:], valueFile)
			if err != nil {
				return err
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			v, err := c.CompareAndSwap(ctx, args[0], []byte(args[1]), expected, val)
			if err != nil {
				return writeErr(err)
			}
			return g.showVersion(v)
		},
	}
	valueFlag(cmd, &valueFile)
	return cmd
}

func kvScan(g *globals) *cobra.Command {
	var prefix, start, end string
	var limit int
	var keysOnly bool
	var follower time.Duration
	cmd := &cobra.Command{
		Use: "scan KEYSPACE", Short: "List keys in order (by prefix or range)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("%w: --limit %d: want at least 1", errUsage, limit)
			}
			ctx, c, done, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			opts := []client.ScanOption{client.WithLimit(min(limit, 1000))}
			if prefix != "" {
				opts = append(opts, client.WithPrefix([]byte(prefix)))
			} else if start != "" || end != "" {
				var e []byte
				if end != "" {
					e = []byte(end)
				}
				opts = append(opts, client.WithRange([]byte(start), e))
			}
			if keysOnly {
				opts = append(opts, client.KeysOnly())
			}
			if follower > 0 {
				opts = append(opts, client.WithRead(client.Follower(follower)))
			}
			var kvs []client.KV
			for kv, err := range c.ScanAll(ctx, args[0], opts...) {
				if err != nil {
					return err
				}
				kvs = append(kvs, kv)
				if len(kvs) >= limit {
					break
				}
			}
			return g.showScan(kvs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "keys starting with this prefix")
	f.StringVar(&start, "start", "", "first key of the range (inclusive)")
	f.StringVar(&end, "end", "", "end of the range (exclusive)")
	f.IntVar(&limit, "limit", 100, "at most this many keys")
	f.BoolVar(&keysOnly, "keys-only", false, "leave values out")
	f.DurationVar(&follower, "follower", 0, "serve from any permitted replica no staler than this")
	return cmd
}

// showScan prints the keys a scan found.
func (g *globals) showScan(kvs []client.KV) error {
	if g.output == "json" {
		return g.printJSON(list(kvs, kvJSON))
	}
	return g.kvTable(kvs)
}

// kvTable prints keys, values and versions as a table.
func (g *globals) kvTable(kvs []client.KV) error {
	rows := list(kvs, func(kv client.KV) []string {
		return []string{cell(kv.Key), cell(kv.Value), strconv.FormatUint(kv.Version, 10)}
	})
	return g.table("KEY\tVALUE\tVERSION", rows)
}
