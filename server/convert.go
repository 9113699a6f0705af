package server

import (
	"slices"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
)

func policyFromPB(p *pb.Policy) placement.Policy {
	return placement.Policy{
		AllowJurisdictions: p.GetAllowJurisdictions(),
		AllowCountries:     p.GetAllowCountries(),
		DenyCountries:      p.GetDenyCountries(),
		Replicas:           int(p.GetReplicas()),
		LeaderPreference:   p.GetLeaderPreference(),
		Class:              placement.DataClass(p.GetDataClass()),
	}
}

func policyToPB(p placement.Policy) *pb.Policy {
	return &pb.Policy{
		AllowJurisdictions: p.AllowJurisdictions,
		AllowCountries:     p.AllowCountries,
		DenyCountries:      p.DenyCountries,
		Replicas:           uint32(p.Replicas),
		LeaderPreference:   p.LeaderPreference,
		DataClass:          string(p.Class),
	}
}

func localityToPB(l placement.Locality) *pb.Locality {
	return &pb.Locality{Country: l.Country, Region: l.Region, Zone: l.Zone}
}

func (s *Server) nodeToPB(n *nodeRecord) *pb.NodeInfo {
	return &pb.NodeInfo{
		Id: n.ID, Locality: localityToPB(n.Locality), GrpcAddr: n.GRPCAddr, RaftAddr: n.RaftAddr,
		GossipAddr: n.GossipAddr, Live: n.Live, Jurisdictions: s.jurisdict.JurisdictionsOf(n.Locality.Country),
	}
}

// keyspaceToPB converts a keyspace record; leaders maps shard ID to the
// leader's node ID where known.
func keyspaceToPB(k *keyspaceRecord, leaders map[uint64]string) *pb.Keyspace {
	out := &pb.Keyspace{Name: k.Name, Policy: k.policyPB(), CreatedUnixMs: k.CreatedUnixMs}
	for _, sh := range k.Shards {
		out.Shards = append(out.Shards, &pb.ShardInfo{
			Id: sh.ID, HashStart: sh.HashStart, HashEnd: sh.HashEnd,
			Replicas: append([]string(nil), sh.Replicas...), Leader: leaders[sh.ID],
		})
	}
	return out
}

// routesToPB is keyspaceToPB for clients' routing: it lists only replicas and
// leaders the policy permits (during a migration an outside replica is still
// a member, and a client must not send it user data).
func routesToPB(c *catalog, k *keyspaceRecord, leaders map[uint64]string) *pb.Keyspace {
	out := keyspaceToPB(k, leaders)
	permitted := func(id string) bool {
		n, ok := c.nodes[id]
		return ok && k.permits(n.Locality)
	}
	for _, sh := range out.Shards {
		sh.Replicas = slices.DeleteFunc(sh.Replicas, func(id string) bool { return !permitted(id) })
		if sh.Leader != "" && !permitted(sh.Leader) {
			sh.Leader = ""
		}
	}
	return out
}
