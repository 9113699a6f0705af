// Package server is one Clover node: it wires storage (one Pebble per node),
// Raft groups (the meta group and one group per shard replica), the Raft
// transport (all groups over one listener), gossip membership, and the gRPC
// services (KV, Admin, Internal).
//
// It is embeddable:
//
//	cfg := server.DefaultConfig()
//	cfg.NodeID, cfg.DataDir = "ie-1", "/var/lib/clover"
//	cfg.Locality, _ = placement.ParseLocality("country=IE,region=ie-dublin,zone=a")
//	cfg.Bootstrap = true // first node of a new cluster only
//	s, err := server.New(cfg)   // validates cfg, opens storage
//	err = s.Start(ctx)          // listens, joins or founds the cluster
//	<-s.Ready()                 // recorded as a live member
//	defer s.Close()
//
// Residency is enforced at every step (see docs/ARCHITECTURE.md): the
// planner chooses only permitted nodes; a node refuses to open a replica its
// locality may not hold and refuses snapshot restores for it; the transport
// refuses to dial a non-permitted node for a shard and to accept a shard it
// may not hold; a node outside a keyspace's policy refuses every KV call for
// it with a residency error naming permitted endpoints and never forwards.
//
// Writes go to the shard leader, where concurrent commands are packed into
// one Raft entry. Linearizable reads use read-index on the leader; follower
// reads are served by any permitted replica within a staleness bound.
package server
