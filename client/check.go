package client

import (
	"context"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// ReplicaCheck is the result of CheckReplicas.
type ReplicaCheck struct {
	// OK: every shard checked is identical on all its replicas.
	OK     bool
	Shards []ShardCheck
}

// ShardCheck is one shard's comparison.
type ShardCheck struct {
	ShardID  uint64
	Keyspace string
	// Status is "identical" (every replica with the same hash and key
	// count, whatever its applied index: entries that change no data may
	// separate them), "diverged" (same applied index, different data),
	// "unsettled" (different data at different applied indexes until the
	// settle time ran out, e.g. under steady writes) or "unreachable" (a
	// replica could not be hashed; see its Err).
	Status   string
	Replicas []ReplicaDigest
}

// ReplicaDigest is one replica's applied index and data hash.
type ReplicaDigest struct {
	Node         string
	AppliedIndex uint64
	// Hash is the first 8 bytes of a SHA-256 over every key, value and
	// version in key order; Keys counts the keys.
	Hash uint64
	Keys uint64
	Err  string
}

// CheckReplicas compares, shard by shard, a hash of every replica's data,
// for one keyspace or for all (""). Replicas whose data differs at
// different applied indexes are hashed again; settle bounds how long the
// node keeps asking (0: 10 seconds). The hashes read the data, not the
// user keys: nothing of the data leaves the nodes.
func (c *Client) CheckReplicas(ctx context.Context, keyspace string, settle time.Duration) (ReplicaCheck, error) {
	var resp *pb.CheckReplicasResponse
	err := c.admin(ctx, true, func(ctx context.Context, a pb.AdminClient) error {
		var err error
		resp, err = a.CheckReplicas(ctx, &pb.CheckReplicasRequest{Keyspace: keyspace, SettleMs: uint32(settle.Milliseconds())})
		return err
	})
	if err != nil {
		return ReplicaCheck{}, err
	}
	out := ReplicaCheck{OK: resp.GetOk()}
	for _, s := range resp.GetShards() {
		sc := ShardCheck{ShardID: s.GetShardId(), Keyspace: s.GetKeyspace(), Status: s.GetStatus()}
		for _, d := range s.GetReplicas() {
			sc.Replicas = append(sc.Replicas, ReplicaDigest{Node: d.GetNodeId(), AppliedIndex: d.GetAppliedIndex(),
				Hash: d.GetHash(), Keys: d.GetKeys(), Err: d.GetError()})
		}
		out.Shards = append(out.Shards, sc)
	}
	return out, nil
}
