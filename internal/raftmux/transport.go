package raftmux

import (
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Defaults of TransportConfig.
const (
	DefaultMaxPool          = 3
	DefaultTransportTimeout = 10 * time.Second
)

// TransportConfig configures NewTransport. The zero value works.
type TransportConfig struct {
	// MaxPool is how many idle connections to each peer the transport keeps
	// for reuse. Default 3.
	MaxPool int
	// Timeout is the I/O deadline of one RPC; InstallSnapshot scales it with
	// the snapshot's size. Default 10s.
	Timeout time.Duration
	// MaxRPCsInFlight bounds pipelined AppendEntries per peer; 1 disables
	// pipelining. Default (0): raft's own default, 2.
	MaxRPCsInFlight int
	// ServerAddressProvider, if set, resolves server IDs to addresses.
	ServerAddressProvider raft.ServerAddressProvider
	// Logger receives the transport's logs. Default: discarded.
	Logger hclog.Logger
}

func (c TransportConfig) withDefaults() TransportConfig {
	if c.MaxPool <= 0 {
		c.MaxPool = DefaultMaxPool
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTransportTimeout
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: io.Discard, Level: hclog.Off})
	}
	return c
}

// NewTransport returns a raft.NetworkTransport over stream, a stream layer
// from Mux.Register. The transport owns the layer: its Close (which
// raft.Raft.Shutdown calls) closes the layer and unregisters the shard.
func NewTransport(stream raft.StreamLayer, cfg TransportConfig) *raft.NetworkTransport {
	cfg = cfg.withDefaults()
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: cfg.ServerAddressProvider,
		Logger:                cfg.Logger,
		Stream:                stream,
		MaxPool:               cfg.MaxPool,
		MaxRPCsInFlight:       cfg.MaxRPCsInFlight,
		Timeout:               cfg.Timeout,
	})
}
