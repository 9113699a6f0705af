package client

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
)

// routingTable is an immutable snapshot of where shards live; leader hints
// are updated in place through atomics.
type routingTable struct {
	index     uint64
	keyspaces map[string]*ksRoute
	addrs     map[string]string // node ID -> gRPC address
	ids       map[string]string // gRPC address -> node ID
	live      map[string]bool
}

type ksRoute struct {
	shards []*shardRoute
}

type shardRoute struct {
	id       uint64
	replicas []string
	leader   atomic.Pointer[string] // gRPC address
}

func emptyRoutes() *routingTable {
	return &routingTable{keyspaces: map[string]*ksRoute{}, addrs: map[string]string{}, ids: map[string]string{}, live: map[string]bool{}}
}

func (rt *routingTable) shard(ks string, hash uint64) *shardRoute {
	r, ok := rt.keyspaces[ks]
	if !ok || len(r.shards) == 0 {
		return nil
	}
	return r.shards[keys.ShardIndex(hash, len(r.shards))]
}

// addrFor picks the node for a key: the shard's leader, or with anyReplica
// (bounded-staleness reads) the replicas in turn from the one at spread, so
// that such reads share the load among every replica.
func (rt *routingTable) addrFor(ks string, hash uint64, anyReplica bool, avoid string, attempt, spread int) string {
	sh := rt.shard(ks, hash)
	if sh == nil {
		return ""
	}
	if !anyReplica {
		if l := sh.leader.Load(); l != nil && *l != "" && *l != avoid {
			return *l
		}
	}
	n := len(sh.replicas)
	start := attempt
	if anyReplica {
		start += spread
	}
	for i := 0; i < n; i++ {
		id := sh.replicas[(start+i)%n]
		if addr := rt.addrs[id]; addr != "" && addr != avoid && rt.live[id] {
			return addr
		}
	}
	return ""
}

// anyPermitted returns a replica address of any shard of the keyspace: a node
// that is permitted to serve it.
func (rt *routingTable) anyPermitted(ks string, avoid string, attempt int) string {
	r, ok := rt.keyspaces[ks]
	if !ok {
		return ""
	}
	for i := range r.shards {
		sh := r.shards[(attempt+i)%len(r.shards)]
		if l := sh.leader.Load(); l != nil && *l != "" && *l != avoid {
			return *l
		}
	}
	return ""
}

func (c *Client) learnLeader(ks string, key []byte, addr string) {
	if key == nil {
		return
	}
	c.routeMu.RLock()
	sh := c.routes.shard(ks, keys.Hash(key))
	c.routeMu.RUnlock()
	if sh != nil {
		sh.leader.Store(&addr)
	}
}

func (c *Client) forgetLeader(ks string, key []byte) {
	if key == nil {
		return
	}
	c.routeMu.RLock()
	sh := c.routes.shard(ks, keys.Hash(key))
	c.routeMu.RUnlock()
	if sh != nil {
		sh.leader.Store(nil)
	}
}

// refreshRoutes reloads the routing table from any reachable node. It skips
// the reload when another caller refreshed past minIndex meanwhile.
func (c *Client) refreshRoutes(ctx context.Context, minIndex uint64) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.routeMu.RLock()
	cur := c.routes
	c.routeMu.RUnlock()
	if minIndex > 0 && cur.index > minIndex {
		return nil
	}
	candidates := append([]string(nil), c.cfg.Endpoints...)
	for _, a := range cur.addrs {
		candidates = append(candidates, a)
	}
	var lastErr error
	for _, addr := range candidates {
		cc, err := c.conn(addr)
		if err != nil {
			lastErr = err
			continue
		}
		resp, err := pb.NewAdminClient(cc).RoutingTable(ctx, &pb.RoutingTableRequest{})
		if err != nil {
			lastErr = fromStatus(err)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		c.routeMu.Lock()
		c.routes = buildRoutes(resp)
		c.routeMu.Unlock()
		return nil
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: no endpoint answered", ErrUnavailable)
	}
	return lastErr
}

func buildRoutes(resp *pb.RoutingTableResponse) *routingTable {
	rt := emptyRoutes()
	rt.index = resp.MetaIndex
	for _, n := range resp.Nodes {
		rt.addrs[n.Id] = n.GrpcAddr
		rt.ids[n.GrpcAddr] = n.Id
		rt.live[n.Id] = n.Live
	}
	for _, ks := range resp.Keyspaces {
		r := &ksRoute{}
		shards := slices.Clone(ks.Shards)
		slices.SortFunc(shards, func(a, b *pb.ShardInfo) int { return cmp.Compare(a.HashStart, b.HashStart) })
		for _, sh := range shards {
			s := &shardRoute{id: sh.Id, replicas: sh.Replicas}
			if sh.Leader != "" {
				if a := rt.addrs[sh.Leader]; a != "" {
					s.leader.Store(&a)
				}
			}
			r.shards = append(r.shards, s)
		}
		rt.keyspaces[ks.Name] = r
	}
	return rt
}

// keyspaceOfShard returns the keyspace of shard id in the routing table, or
// "" when the table has no such shard (the admin stream, shard 0).
func (c *Client) keyspaceOfShard(id uint64) string {
	if id == 0 {
		return ""
	}
	c.routeMu.RLock()
	rt := c.routes
	c.routeMu.RUnlock()
	for name, ks := range rt.keyspaces {
		for _, sh := range ks.shards {
			if sh.id == id {
				return name
			}
		}
	}
	return ""
}
