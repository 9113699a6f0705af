package server

import (
	"fmt"
	"sort"
	"time"

	pb "github.com/clover-kv/clover/api/cloverv1"
)

// shardView is what the replicas report about one shard.
type shardView struct {
	leader  string
	claims  int              // replicas that report leading (more than one: a deposed leader has not noticed yet)
	members []*pb.RaftMember // the leader's configuration, else the most advanced replica's
	holders []string         // nodes that report holding a replica
	status  map[string]*pb.ShardReplicaStatus
}

// shardViews groups the replicas reported by every node by shard.
func shardViews(statuses []*pb.NodeStatus) map[uint64]*shardView {
	views := map[uint64]*shardView{}
	best := map[uint64]uint64{}
	for _, st := range statuses {
		if st.Node == nil {
			continue
		}
		for _, r := range st.Shards {
			v := views[r.ShardId]
			if v == nil {
				v = &shardView{status: map[string]*pb.ShardReplicaStatus{}}
				views[r.ShardId] = v
			}
			v.holders = append(v.holders, st.Node.Id)
			v.status[st.Node.Id] = r
			switch {
			case r.Damaged: // runs no Raft: knows no configuration
			case r.Leader:
				v.claims++
				v.leader, v.members = st.Node.Id, r.Members
				best[r.ShardId] = ^uint64(0)
			case r.LastIndex >= best[r.ShardId] && best[r.ShardId] != ^uint64(0):
				v.members, best[r.ShardId] = r.Members, r.LastIndex
			}
		}
	}
	for _, v := range views {
		sort.Strings(v.holders)
	}
	return views
}

// verifyPlacement checks every shard's actual Raft configuration, as its
// replicas report it, against its keyspace's policy: every member and every
// node holding data must be permitted, and each shard must have as many live
// voters as the policy asks.
func verifyPlacement(c *catalog, statuses []*pb.NodeStatus) *pb.PlacementVerifyResponse {
	out := &pb.PlacementVerifyResponse{CheckedUnixMs: time.Now().UnixMilli()}
	reachable := map[string]bool{}
	for _, st := range statuses {
		if st.Node != nil && st.Reachable && st.Node.Live {
			reachable[st.Node.Id] = true
		}
	}
	views := shardViews(statuses)
	add := func(sh uint64, ks, node, kind, format string, args ...any) {
		out.Violations = append(out.Violations, &pb.PlacementViolation{ShardId: sh, Keyspace: ks, NodeId: node, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	for _, ks := range c.sortedKeyspaces() {
		for _, sh := range ks.Shards {
			out.ShardsChecked++
			v := views[sh.ID]
			if v == nil {
				add(sh.ID, ks.Name, "", "no-leader", "no replica of the shard answered")
				continue
			}
			inConfig := map[string]bool{}
			liveVoters := 0
			for _, m := range v.members {
				out.ReplicasChecked++
				inConfig[m.NodeId] = true
				n, ok := c.nodes[m.NodeId]
				if !ok || !ks.permits(n.Locality) {
					loc := "unknown locality"
					if ok {
						loc = n.Locality.String()
					}
					add(sh.ID, ks.Name, m.NodeId, "outside-policy", "Raft member on %s is outside %s", loc, ks.Policy.String())
					continue
				}
				if m.Voter && reachable[m.NodeId] {
					liveVoters++
				}
			}
			for _, h := range v.holders {
				if inConfig[h] {
					continue
				}
				if n, ok := c.nodes[h]; ok && !ks.permits(n.Locality) {
					add(sh.ID, ks.Name, h, "stray-replica", "node at %s still holds a replica outside %s", n.Locality, ks.Policy.String())
				}
			}
			if v.leader == "" {
				add(sh.ID, ks.Name, "", "no-leader", "no replica reports leading the shard")
			}
			if liveVoters < ks.Policy.Replicas {
				add(sh.ID, ks.Name, "", "under-replicated", "%d live permitted voters, policy wants %d", liveVoters, ks.Policy.Replicas)
			}
		}
	}
	// Data of keyspaces no longer in the catalogue, still on a node.
	for _, st := range statuses {
		for _, r := range st.Shards {
			if _, ok := c.shards[r.ShardId]; !ok && st.Node != nil {
				add(r.ShardId, r.Keyspace, st.Node.Id, "stray-replica", "replica of a shard that is not in the catalogue")
			}
		}
	}
	out.Ok = len(out.Violations) == 0
	return out
}
