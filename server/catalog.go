package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// The meta group (Raft group 0) stores the catalogue as key-value pairs with
// JSON values through the same state machine as user shards:
//
//	node/<id>     nodeRecord
//	ks/<name>     keyspaceRecord
//	seq/shard     next shard ID (decimal)
//	hist/<n>      historyEvent
//	guard         guardRecord (the personal-data guardrail, written once)
//
// It never holds a user key or value: shard boundaries are hash ranges.
const (
	metaShardID   uint64 = 0
	metaNodePfx          = "node/"
	metaKSPfx            = "ks/"
	metaShardSeq         = "seq/shard"
	metaHistPfx          = "hist/"
	metaGuard            = "guard"
	firstUserShID uint64 = 1
)

type nodeRecord struct {
	ID         string             `json:"id"`
	Locality   placement.Locality `json:"locality"`
	GRPCAddr   string             `json:"grpc_addr"`
	RaftAddr   string             `json:"raft_addr"`
	GossipAddr string             `json:"gossip_addr"`
	Live       bool               `json:"live"`
}

type shardRecord struct {
	ID        uint64 `json:"id"`
	HashStart uint64 `json:"hash_start"`
	HashEnd   uint64 `json:"hash_end"`
	// Replicas are the node IDs meant to hold the shard.
	Replicas []string `json:"replicas"`
	// Initial are the replicas that bootstrap the group together. A node added
	// later joins through the leader instead and must not bootstrap.
	Initial []string `json:"initial"`
}

type keyspaceRecord struct {
	Name   string           `json:"name"`
	Policy placement.Policy `json:"policy"`
	// Countries permitted by the policy, resolved once when the policy was set,
	// so every node decides residency identically whatever its own catalogue.
	// Anywhere means every country but Policy.DenyCountries.
	Countries []string `json:"countries,omitempty"`
	Anywhere  bool     `json:"anywhere,omitempty"`
	// Access is the access policy, its caller countries resolved when it
	// was set, like Countries.
	Access accessPolicy `json:"access,omitzero"`
	// Audit is what the keyspace's audit streams record: all, writes,
	// none, or "" for the class's default (auditMode).
	Audit         string        `json:"audit,omitempty"`
	Shards        []shardRecord `json:"shards"`
	CreatedUnixMs int64         `json:"created_unix_ms"`
	// version of the record in the meta group, for compare-and-swap.
	version uint64
}

// permits reports whether a node at locality l may hold and serve the keyspace.
func (k *keyspaceRecord) permits(l placement.Locality) bool {
	if slices.Contains(k.Policy.DenyCountries, l.Country) {
		return false
	}
	if k.Anywhere {
		return true
	}
	return slices.Contains(k.Countries, l.Country)
}

// shardRef locates a shard in the catalogue.
type shardRef struct {
	ks    *keyspaceRecord
	shard *shardRecord
}

// catalog is an immutable view of the meta group's state at one applied index.
type catalog struct {
	index       uint64
	nodes       map[string]*nodeRecord
	byRaftAddr  map[string]*nodeRecord
	keyspaces   map[string]*keyspaceRecord
	shards      map[uint64]shardRef
	nextShardID uint64
	seqVersion  uint64         // version of the seq/shard key, for compare-and-swap
	history     []historyEvent // oldest first
	historyKeys []string
	// guard is the personal-data guardrail; nil until it is recorded.
	guard *guardRecord
}

// historyEvent records one placement change: when a replica was added or
// removed where, leadership moved, or a policy changed, and why. Stored
// under hist/<unix-nanos>-<seq> in the meta group.
type historyEvent struct {
	UnixMs   int64  `json:"unix_ms"`
	Shard    uint64 `json:"shard,omitempty"`
	Keyspace string `json:"keyspace"`
	Node     string `json:"node,omitempty"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
}

func emptyCatalog() *catalog {
	return &catalog{
		nodes:       map[string]*nodeRecord{},
		byRaftAddr:  map[string]*nodeRecord{},
		keyspaces:   map[string]*keyspaceRecord{},
		shards:      map[uint64]shardRef{},
		nextShardID: firstUserShID,
	}
}

// loadCatalog reads the whole meta group state from its FSM.
func loadCatalog(fsm *raftfsm.FSM) (*catalog, error) {
	c := emptyCatalog()
	c.index = fsm.AppliedIndex()
	kvs, err := fsm.Scan(nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	for _, kv := range kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, metaNodePfx):
			var n nodeRecord
			if err := json.Unmarshal(kv.Value, &n); err != nil {
				return nil, fmt.Errorf("catalogue record %q: %w", k, err)
			}
			c.nodes[n.ID] = &n
			c.byRaftAddr[n.RaftAddr] = &n
		case strings.HasPrefix(k, metaKSPfx):
			var ks keyspaceRecord
			if err := json.Unmarshal(kv.Value, &ks); err != nil {
				return nil, fmt.Errorf("catalogue record %q: %w", k, err)
			}
			ks.version = kv.Version
			c.keyspaces[ks.Name] = &ks
			for i := range ks.Shards {
				c.shards[ks.Shards[i].ID] = shardRef{ks: &ks, shard: &ks.Shards[i]}
			}
		case strings.HasPrefix(k, metaHistPfx):
			var ev historyEvent
			if err := json.Unmarshal(kv.Value, &ev); err != nil {
				return nil, fmt.Errorf("catalogue record %q: %w", k, err)
			}
			c.history = append(c.history, ev)
			c.historyKeys = append(c.historyKeys, k)
		case k == metaGuard:
			var g guardRecord
			if err := json.Unmarshal(kv.Value, &g); err != nil {
				return nil, fmt.Errorf("catalogue record %q: %w", k, err)
			}
			c.guard = &g
		case k == metaShardSeq:
			var next uint64
			if _, err := fmt.Sscan(string(kv.Value), &next); err != nil {
				return nil, fmt.Errorf("catalogue record %q: %w", k, err)
			}
			c.nextShardID, c.seqVersion = next, kv.Version
		}
	}
	return c, nil
}

func (c *catalog) sortedNodes() []*nodeRecord {
	out := make([]*nodeRecord, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (c *catalog) sortedKeyspaces() []*keyspaceRecord {
	out := make([]*keyspaceRecord, 0, len(c.keyspaces))
	for _, k := range c.keyspaces {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// permittedEndpoints lists the gRPC addresses of live nodes that may serve ks.
func (c *catalog) permittedEndpoints(ks *keyspaceRecord) []string {
	var out []string
	for _, n := range c.sortedNodes() {
		if n.Live && ks.permits(n.Locality) {
			out = append(out, n.GRPCAddr)
		}
	}
	return out
}

// replicaCounts counts the replicas each node holds, for balance.
func (c *catalog) replicaCounts() map[string]int {
	out := map[string]int{}
	for _, ref := range c.shards {
		for _, r := range ref.shard.Replicas {
			out[r]++
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }

func metaNodeKey(id string) []byte { return []byte(metaNodePfx + id) }
func metaKSKey(name string) []byte { return []byte(metaKSPfx + name) }
func mustJSON(v any) []byte        { b, _ := json.Marshal(v); return b }
func putOp(key, value []byte) raftfsm.Op {
	return raftfsm.Op{Kind: raftfsm.OpPut, Key: key, Value: value}
}
