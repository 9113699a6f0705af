package main

import (
	"encoding/base64"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/clover-kv/clover/client"
)

// The -w json output: a stable interface for scripts (docs/OPERATIONS.md,
// "JSON output"). Every field is named as protojson names the field of
// api/proto/clover/v1/clover.proto it comes from (lowerCamelCase); a list
// is [] when empty, never null; every field is always present unless its
// comment says otherwise. Counts, versions, indexes and IDs are JSON
// numbers; 64-bit hashes and hash-range bounds, which exceed what many JSON
// readers hold exactly (2^53), are 16-digit hex strings, as in the tables.
// The golden files in testdata/ pin each shape.

// jsonKV is a KeyValue. Key and value are strings when they are valid
// UTF-8; otherwise key (or value) is absent and keyBase64 (valueBase64)
// holds the bytes in standard base64.
type jsonKV struct {
	Key         *string `json:"key,omitempty"`
	KeyBase64   string  `json:"keyBase64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 string  `json:"valueBase64,omitempty"`
	Version     uint64  `json:"version"`
}

func kvJSON(kv client.KV) jsonKV {
	out := jsonKV{Version: kv.Version}
	out.Key, out.KeyBase64 = bytesJSON(kv.Key)
	out.Value, out.ValueBase64 = bytesJSON(kv.Value)
	return out
}

// bytesJSON returns b as a string when it is valid UTF-8, else as base64.
func bytesJSON(b []byte) (*string, string) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// jsonVersion is the answer to a put, delete or compare-and-swap.
type jsonVersion struct {
	Version uint64 `json:"version"`
}

type jsonPolicy struct {
	AllowJurisdictions []string `json:"allowJurisdictions"`
	AllowCountries     []string `json:"allowCountries"`
	DenyCountries      []string `json:"denyCountries"`
	Replicas           int      `json:"replicas"`
	LeaderPreference   []string `json:"leaderPreference"`
	DataClass          string   `json:"dataClass"`
	// The access policy as asked ([] for a default), and the countries
	// callers may work from as the cluster resolved it, defaults included.
	ReadRoles           []string `json:"readRoles"`
	WriteRoles          []string `json:"writeRoles"`
	CallerJurisdictions []string `json:"callerJurisdictions"`
	CallerCountries     []string `json:"callerCountries"`
	CallerAnywhere      bool     `json:"callerAnywhere"`
	// What the audit log records, resolved: all, writes or none.
	Audit string `json:"audit"`
}

func policyJSON(p client.Policy) jsonPolicy {
	return jsonPolicy{AllowJurisdictions: strs(p.AllowJurisdictions), AllowCountries: strs(p.AllowCountries),
		DenyCountries: strs(p.DenyCountries), Replicas: p.Replicas, LeaderPreference: strs(p.LeaderPreference), DataClass: p.Class,
		ReadRoles: strs(p.ReadRoles), WriteRoles: strs(p.WriteRoles), CallerJurisdictions: strs(p.CallerJurisdictions),
		CallerCountries: strs(p.CallerCountries), CallerAnywhere: p.CallerAnywhere, Audit: p.Audit}
}

type jsonShardInfo struct {
	ID        uint64   `json:"id"`
	HashStart string   `json:"hashStart"`
	HashEnd   string   `json:"hashEnd"`
	Replicas  []string `json:"replicas"`
	Leader    string   `json:"leader"` // "" when unknown
}

type jsonKeyspace struct {
	Name          string          `json:"name"`
	Policy        jsonPolicy      `json:"policy"`
	Shards        []jsonShardInfo `json:"shards"`
	CreatedUnixMs int64           `json:"createdUnixMs"`
}

func keyspaceJSON(k client.Keyspace) jsonKeyspace {
	return jsonKeyspace{Name: k.Name, Policy: policyJSON(k.Policy), CreatedUnixMs: unixMs(k.Created),
		Shards: list(k.Shards, func(s client.Shard) jsonShardInfo {
			return jsonShardInfo{ID: s.ID, HashStart: hash(s.HashStart), HashEnd: hash(s.HashEnd), Replicas: strs(s.Replicas), Leader: s.Leader}
		})}
}

type jsonLocality struct {
	Country string `json:"country"`
	Region  string `json:"region"`
	Zone    string `json:"zone"`
}

type jsonReplicaStatus struct {
	ShardID      uint64 `json:"shardId"`
	Keyspace     string `json:"keyspace"`
	Leader       bool   `json:"leader"`
	State        string `json:"state"`
	AppliedIndex uint64 `json:"appliedIndex"`
	CommitIndex  uint64 `json:"commitIndex"`
	LastIndex    uint64 `json:"lastIndex"`
	Lag          uint64 `json:"lag"`
	Damaged      bool   `json:"damaged"`
	Fault        string `json:"fault"`
}

// jsonNodeStatus is a NodeStatus with the fields of its NodeInfo inlined.
type jsonNodeStatus struct {
	ID            string              `json:"id"`
	Locality      jsonLocality        `json:"locality"`
	Jurisdictions []string            `json:"jurisdictions"`
	GRPCAddr      string              `json:"grpcAddr"`
	Live          bool                `json:"live"`
	Reachable     bool                `json:"reachable"`
	Error         string              `json:"error"`
	ShardsHeld    int                 `json:"shardsHeld"`
	ShardsLed     int                 `json:"shardsLed"`
	Shards        []jsonReplicaStatus `json:"shards"`
	// Refusals: requests the node's gateway refused, by rule.
	Refusals map[string]uint64 `json:"refusals"`
}

type jsonMember struct {
	NodeID string `json:"nodeId"`
	Voter  bool   `json:"voter"`
}

type jsonClusterStatus struct {
	MetaLeader  string           `json:"metaLeader"`
	Nodes       []jsonNodeStatus `json:"nodes"`
	Placement   jsonVerify       `json:"placement"`
	MetaMembers []jsonMember     `json:"metaMembers"`
	// PersonalDataJurisdiction is the guardrail; "" when none was set.
	PersonalDataJurisdiction string `json:"personalDataJurisdiction"`
	Insecure                 bool   `json:"insecure"`
}

func clusterStatusJSON(st client.ClusterStatus) jsonClusterStatus {
	return jsonClusterStatus{MetaLeader: st.MetaLeader, Placement: verifyJSON(st.Placement),
		PersonalDataJurisdiction: st.PersonalDataJurisdiction, Insecure: st.Insecure,
		MetaMembers: list(st.MetaMembers, memberJSON),
		Nodes: list(st.Nodes, func(n client.NodeStatus) jsonNodeStatus {
			return jsonNodeStatus{ID: n.ID, Locality: jsonLocality(n.Locality), Jurisdictions: strs(n.Jurisdictions),
				GRPCAddr: n.GRPCAddr, Live: n.Live, Reachable: n.Reachable, Error: n.Error,
				ShardsHeld: n.ShardsHeld, ShardsLed: n.ShardsLed, Refusals: refusalsJSON(n.Refusals),
				Shards: list(n.Replicas, func(r client.ReplicaStatus) jsonReplicaStatus {
					return jsonReplicaStatus{ShardID: r.ShardID, Keyspace: r.Keyspace, Leader: r.Leader, State: r.State,
						AppliedIndex: r.AppliedIndex, CommitIndex: r.CommitIndex, LastIndex: r.LastIndex, Lag: r.Lag,
						Damaged: r.Damaged, Fault: r.Fault}
				})}
		})}
}

func memberJSON(m client.Member) jsonMember { return jsonMember{NodeID: m.Node, Voter: m.Voter} }

type jsonViolation struct {
	ShardID  uint64 `json:"shardId"`
	Keyspace string `json:"keyspace"`
	NodeID   string `json:"nodeId"`
	Kind     string `json:"kind"`
	Detail   string `json:"detail"`
}

type jsonVerify struct {
	OK              bool            `json:"ok"`
	Violations      []jsonViolation `json:"violations"`
	ShardsChecked   int             `json:"shardsChecked"`
	ReplicasChecked int             `json:"replicasChecked"`
	CheckedUnixMs   int64           `json:"checkedUnixMs"`
}

func verifyJSON(r client.VerifyReport) jsonVerify {
	return jsonVerify{OK: r.OK, ShardsChecked: r.ShardsChecked, ReplicasChecked: r.ReplicasChecked, CheckedUnixMs: unixMs(r.Checked),
		Violations: list(r.Violations, func(v client.Violation) jsonViolation {
			return jsonViolation{ShardID: v.ShardID, Keyspace: v.Keyspace, NodeID: v.Node, Kind: v.Kind, Detail: v.Detail}
		})}
}

type jsonEvent struct {
	UnixMs   int64  `json:"unixMs"`
	ShardID  uint64 `json:"shardId"` // 0 for keyspace-wide events
	Keyspace string `json:"keyspace"`
	NodeID   string `json:"nodeId"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
}

func eventJSON(e client.PlacementEvent) jsonEvent {
	return jsonEvent{UnixMs: unixMs(e.Time), ShardID: e.ShardID, Keyspace: e.Keyspace, NodeID: e.Node, Action: e.Action, Reason: e.Reason}
}

type jsonShardPlacement struct {
	ShardID  uint64       `json:"shardId"`
	Status   string       `json:"status"`
	Problems []string     `json:"problems"`
	Members  []jsonMember `json:"members"`
	Leader   string       `json:"leader"`
}

type jsonKeyspaceStatus struct {
	Name            string               `json:"name"`
	Policy          jsonPolicy           `json:"policy"`
	Conforming      int                  `json:"conforming"`
	Moving          int                  `json:"moving"`
	UnderReplicated int                  `json:"underReplicated"`
	Blocked         int                  `json:"blocked"`
	Shards          []jsonShardPlacement `json:"shards"`
}

func keyspaceStatusJSON(st client.KeyspaceStatus) jsonKeyspaceStatus {
	return jsonKeyspaceStatus{Name: st.Name, Policy: policyJSON(st.Policy), Conforming: st.Conforming, Moving: st.Moving,
		UnderReplicated: st.UnderReplicated, Blocked: st.Blocked,
		Shards: list(st.Shards, func(s client.ShardPlacement) jsonShardPlacement {
			return jsonShardPlacement{ShardID: s.ShardID, Status: s.Status, Problems: strs(s.Problems),
				Members: list(s.Members, memberJSON), Leader: s.Leader}
		})}
}

type jsonReplicaDigest struct {
	NodeID       string `json:"nodeId"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Hash         string `json:"hash"`
	Keys         uint64 `json:"keys"`
	Error        string `json:"error"`
}

type jsonShardCheck struct {
	ShardID  uint64              `json:"shardId"`
	Keyspace string              `json:"keyspace"`
	Status   string              `json:"status"`
	Replicas []jsonReplicaDigest `json:"replicas"`
}

type jsonCheck struct {
	OK     bool             `json:"ok"`
	Shards []jsonShardCheck `json:"shards"`
}

func checkJSON(rep client.ReplicaCheck) jsonCheck {
	return jsonCheck{OK: rep.OK, Shards: list(rep.Shards, func(s client.ShardCheck) jsonShardCheck {
		return jsonShardCheck{ShardID: s.ShardID, Keyspace: s.Keyspace, Status: s.Status,
			Replicas: list(s.Replicas, func(d client.ReplicaDigest) jsonReplicaDigest {
				return jsonReplicaDigest{NodeID: d.Node, AppliedIndex: d.AppliedIndex, Hash: hash(d.Hash), Keys: d.Keys, Error: d.Err}
			})}
	})}
}

// list converts every element of in with f; an empty or nil in gives an
// empty, non-nil slice, so that JSON shows [] rather than null.
func list[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

func strs(s []string) []string { return list(s, func(v string) string { return v }) }

// unixMs is t in milliseconds since the Unix epoch; 0 for the zero time.
func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// hash formats a 64-bit hash or hash-range bound as 16 hex digits.
func hash(h uint64) string { return fmt.Sprintf("%016x", h) }

// refusalsJSON is never null: an empty object when nothing was refused.
func refusalsJSON(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}
