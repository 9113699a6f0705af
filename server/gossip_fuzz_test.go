package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/clover-kv/clover/placement"
)

// fuzzMembership is a membership with no memberlist: what memberlist's
// callbacks record and what members() makes of it.
func fuzzMembership() *membership {
	return &membership{changed: make(chan struct{}, 1), logger: slog.New(slog.DiscardHandler), metas: map[string][]byte{}, departures: newDepartures()}
}

// FuzzGossipMetaDecode records fuzzed metadata for a member, as memberlist's
// join and update callbacks do, and reads the live members back. Whatever
// the bytes, nothing panics; metadata that is not JSON, names another node,
// carries an invalid node ID or an invalid locality is ignored; metadata
// that is all of those things is taken as it decodes. What is taken encodes
// and decodes back to the same value, and the record is a copy of the
// caller's bytes.
func FuzzGossipMetaDecode(f *testing.F) {
	good := gossipMeta{ID: "ie-1", Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"},
		GRPC: "10.0.0.1:7400", Raft: "10.0.0.1:7500", Gossip: "10.0.0.1:7600"}
	enc := mustJSON(good)
	for _, s := range []struct {
		name string
		meta []byte
	}{
		{"ie-1", enc},
		{"ie-1", enc[:len(enc)/2]},
		{"ie-2", enc}, // names another node
		{"ie-1", mustJSON(gossipMeta{ID: "ie-1", Locality: placement.Locality{Country: "IE"}})}, // before the listeners are bound
		{"ie-1", []byte(`{"id":"ie-1","loc":{"Country":"XX"}}`)},
		{"ie-1", []byte(`{"id":"ie-1","loc":{"Country":"ie"}}`)},
		{"ie-1", []byte(`{"id":"ie-1","loc":{"Country":"IE","Region":"Dublin"}}`)},
		{"ie-1", []byte(`{"id":"ie-1"}`)},
		{"Bad Node", []byte(`{"id":"Bad Node","loc":{"Country":"IE"}}`)},
		{"", []byte(`{"id":"","loc":{"Country":"IE"}}`)},
		{"ie-1", []byte(`{"ID":"ie-1","LOC":{"country":"IE"},"extra":[1,2]}`)},
		{"ie-1", []byte(`{"id":"ie-1","loc":{"Country":"IE"},"id":"ie-2"}`)},
		{"ie-1", []byte(`{"id":"ie-1","loc":{"Country":"I\u0045"},"grpc":"\ud800"}`)},
		{"ie-1", []byte(`null`)},
		{"ie-1", []byte(`[]`)},
		{"ie-1", nil},
	} {
		f.Add(s.name, s.meta)
	}
	f.Fuzz(func(t *testing.T, name string, meta []byte) {
		m := fuzzMembership()
		in := bytes.Clone(meta)
		m.record(name, in)
		for i := range in {
			in[i] = '!' // the caller's buffer is memberlist's to reuse
		}
		got := m.members()

		var want gossipMeta
		err := json.Unmarshal(meta, &want)
		acceptable := err == nil && want.ID == name && nodeIDPattern.MatchString(want.ID) && want.Locality.Validate() == nil
		if !acceptable {
			if len(got) != 0 {
				t.Fatalf("member %q with metadata %q (decode err %v) was taken: %+v", name, meta, err, got)
			}
			return
		}
		if len(got) != 1 || got[name] != want {
			t.Fatalf("member %q with valid metadata %q: got %+v, want %+v", name, meta, got, want)
		}

		// What is taken is what this node would have sent: encoding it and
		// reading it back gives the same value.
		m2 := fuzzMembership()
		m2.setMeta(got[name])
		m2.record(name, m2.NodeMeta(memberlist.MetaMaxSize))
		if again := m2.members(); len(again) != 1 || again[name] != want {
			t.Fatalf("round trip of %+v gave %+v", want, again)
		}
	})
}

// FuzzGossipMetaEncode builds a node's configuration from fuzzed settings
// and, when Validate accepts it, the gossip metadata the node would
// advertise at start: its advertised gRPC address as given, or else its
// listener's address; its Raft address as it resolves; and its gossip
// address. Each address the node makes up itself is taken at its longest:
// an IPv6 address with an interface zone and a five-digit port. The
// metadata must fit memberlist's limit (memberlist panics on more), and
// other nodes must read it back as sent.
func FuzzGossipMetaEncode(f *testing.F) {
	for _, s := range []struct{ id, locality, grpc, raft string }{
		{"ie-1", "country=IE,region=ie-dublin,zone=a", "", ""},
		{"ie-1", "country=IE", "clover-1.example.com:7400", "10.0.0.1:7500"},
		{strings.Repeat("n", 64), "country=IE,region=" + strings.Repeat("r", 63) + ",zone=" + strings.Repeat("z", 63), "", ""},
		{strings.Repeat("n", 64), "country=IE,region=" + strings.Repeat("r", 63) + ",zone=" + strings.Repeat("z", 63),
			"[2001:db8::1]:7400", "[fe80::1%eth0]:7500"},
		{"ie-1", "country=IE", strings.Repeat("a", 300) + ".example.com:7400", ""},
		{"ie-1", "country=IE", "", "[fe80::1%" + strings.Repeat("z", 400) + "]:7500"},
		{"ie-1", "country=IE", "<&>" + strings.Repeat("<", 100) + ":7400", ""},
		{"ie-1", "country=IE", "", "[::1]:ssh"},
		{"Bad Node", "country=IE", "", ""},
		{"ie-1", "country=XX", "", ""},
	} {
		f.Add(s.id, s.locality, s.grpc, s.raft)
	}
	// The longest string an address the node makes up takes: "[" + IPv6 +
	// "%" + a 15-byte interface name + "]:65535".
	longest := "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%" + strings.Repeat("i", 15) + "]:65535"
	f.Fuzz(func(t *testing.T, id, locality, advGRPC, advRaft string) {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.DataDir = id, "/var/lib/clover"
		cfg.Locality, _ = placement.ParseLocality(locality)
		cfg.AdvertiseGRPC, cfg.AdvertiseRaft = advGRPC, advRaft
		if err := cfg.Validate(); err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		self := gossipMeta{ID: cfg.NodeID, Locality: cfg.Locality, GRPC: advGRPC, Raft: longest, Gossip: longest}
		if self.GRPC == "" {
			self.GRPC = longest
		}
		if advRaft != "" {
			// As the node resolves it at start. Only IP literals with a
			// numeric port are resolved here (no name lookups); a name
			// resolves to an address without a zone, which longest covers.
			host, port, err := net.SplitHostPort(advRaft)
			if _, perr := strconv.Atoi(port); err == nil && perr == nil {
				if _, ierr := netip.ParseAddr(host); ierr == nil {
					addr, rerr := net.ResolveTCPAddr("tcp", advRaft)
					if rerr != nil {
						return // the node refuses to start with a clear error
					}
					if s := addr.String(); len(s) > len(longest) {
						self.Raft = s
					}
				}
			}
		}
		m := fuzzMembership()
		m.setMeta(self)
		b := m.NodeMeta(memberlist.MetaMaxSize)
		if len(b) > memberlist.MetaMaxSize {
			t.Fatalf("config accepted by Validate (id %q, locality %q, advertise-grpc %q, advertise-raft %q) "+
				"advertises %d bytes of gossip metadata, over memberlist's limit of %d",
				id, cfg.Locality, advGRPC, advRaft, len(b), memberlist.MetaMaxSize)
		}
		m.record(cfg.NodeID, b)
		if got := m.members(); len(got) != 1 || got[cfg.NodeID] != self {
			t.Fatalf("node's own metadata %q read back as %+v, want %+v", b, got, self)
		}
	})
}
