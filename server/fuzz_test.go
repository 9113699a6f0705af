package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/internal/keys"
	"github.com/clover-kv/clover/placement"
)

// The KV and Admin handlers are fuzzed on a node that is only a catalogue:
// no storage, no Raft, no listeners. Its catalogue records keyspaces whose
// shards have replicas on nodes it does not know, so a request that passes
// validation would be forwarded to a shard leader and, with no leader
// known, fails with NOT_LEADER. Every other answer is a refusal, and its
// code says why.

// fuzzSecret marks bytes of a key or value that no error message may repeat.
const fuzzSecret = "sEcReT"

// Keyspaces of fuzzNode.
const (
	fuzzOneShard  = "one"     // EEA, 1 shard: every batch stays in one shard
	fuzzSharded   = "users"   // EEA, 8 shards
	fuzzElsewhere = "us-only" // US only: the IE node refuses it (residency)
)

// fuzzNode returns a node in Ireland whose catalogue holds the fuzzing
// keyspaces and, when extra is not empty, one more EEA keyspace named extra.
func fuzzNode(extra string) *Server {
	s := &Server{
		cfg:       Config{NodeID: "ie-1", Locality: placement.Locality{Country: "IE", Region: "ie-dublin", Zone: "a"}, Insecure: true},
		logger:    slog.New(slog.DiscardHandler),
		jurisdict: placement.DefaultCatalogue(),
		replicas:  map[uint64]*replica{},
	}
	s.gate = newGateway(s)
	c := emptyCatalog()
	add := func(name string, p placement.Policy, shards int) {
		countries, anywhere := s.jurisdict.PermittedCountries(p)
		ks := &keyspaceRecord{Name: name, Policy: p, Countries: countries, Anywhere: anywhere}
		for i, r := range keys.Ranges(shards) {
			ks.Shards = append(ks.Shards, shardRecord{ID: c.nextShardID + uint64(i), HashStart: r.Start, HashEnd: r.End,
				Replicas: []string{"de-1", "no-1", "se-1"}})
		}
		c.nextShardID += uint64(shards)
		c.keyspaces[name] = ks
		for i := range ks.Shards {
			c.shards[ks.Shards[i].ID] = shardRef{ks: ks, shard: &ks.Shards[i]}
		}
	}
	eea := placement.Policy{AllowJurisdictions: []string{placement.EEA}, Replicas: 3, Class: placement.ClassPersonal}
	add(fuzzOneShard, eea, 1)
	add(fuzzSharded, eea, 8)
	add(fuzzElsewhere, placement.Policy{AllowCountries: []string{"US"}, Replicas: 3, Class: placement.ClassPersonal}, 2)
	if _, ok := c.keyspaces[extra]; extra != "" && !ok {
		add(extra, eea, 1)
	}
	s.cat.Store(c)
	return s
}

// expected is what the documented rules say about a request: which refusals
// apply. A request with none of them is accepted (forwarded to its leader).
type expected struct {
	notFound, denied, invalid bool
	why                       []string // the limits broken, for failure messages
}

func (e *expected) bad(why string) { e.invalid, e.why = true, append(e.why, why) }

func (e *expected) keyspace(name string) {
	switch name {
	case fuzzOneShard, fuzzSharded:
	case fuzzElsewhere:
		e.denied = true
	default:
		e.notFound = true
	}
}

func (e *expected) key(k []byte) {
	if len(k) == 0 || len(k) > 4<<10 {
		e.bad("key of " + strconv.Itoa(len(k)) + " bytes, want 1..4096")
	}
}

func (e *expected) value(v []byte) {
	if len(v) > 1<<20 {
		e.bad("value of " + strconv.Itoa(len(v)) + " bytes, over 1 MiB")
	}
}

// check compares a handler's error with the expectation.
func (e expected) check(t *testing.T, what string, err error, secret bool, keyspace string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded on a node with no replica and no known leader", what)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: error %v is not a gRPC status", what, err)
	}
	d := errorDetail(err)
	switch st.Code() {
	case codes.NotFound:
		if !e.notFound {
			t.Fatalf("%s: NotFound for a known keyspace: %v", what, err)
		}
	case codes.PermissionDenied:
		if !e.denied || d.GetKind() != pb.ErrorDetail_KIND_RESIDENCY {
			t.Fatalf("%s: PermissionDenied (detail %v) for a keyspace this node may serve: %v", what, d.GetKind(), err)
		}
	case codes.InvalidArgument:
		if !e.invalid {
			t.Fatalf("%s: rejected as invalid although within every limit: %v", what, err)
		}
		if d.GetKind() != pb.ErrorDetail_KIND_INVALID {
			t.Fatalf("%s: InvalidArgument with detail kind %v, want KIND_INVALID", what, d.GetKind())
		}
	case codes.Unavailable:
		if d.GetKind() != pb.ErrorDetail_KIND_NOT_LEADER {
			t.Fatalf("%s: Unavailable with detail kind %v, want KIND_NOT_LEADER: %v", what, d.GetKind(), err)
		}
		if e.notFound || e.denied || e.invalid {
			t.Fatalf("%s: accepted (forwarded to the leader) although notFound=%v denied=%v invalid=%v %v",
				what, e.notFound, e.denied, e.invalid, e.why)
		}
	default:
		t.Fatalf("%s: unexpected code %v: %v", what, st.Code(), err)
	}
	if secret && !strings.Contains(keyspace, fuzzSecret) && strings.Contains(st.Message(), fuzzSecret) {
		t.Fatalf("%s: error message repeats user data: %q", what, st.Message())
	}
}

// fuzzPad returns b followed by n copies of c.
func fuzzPad(b []byte, n int, c byte) []byte {
	out := make([]byte, 0, len(b)+n)
	return append(append(out, b...), bytes.Repeat([]byte{c}, n)...)
}

// FuzzKVRequest sends fuzzed Put, Get, Delete, CompareAndSwap, Batch, Scan
// and Stream requests to the KV handlers. Whatever the input, no handler
// panics; a request breaking a documented limit (key 1..4 KiB, value at most
// 1 MiB, batch 1..1000 ops of distinct keys in one shard and at most 4 MiB,
// scan limit at most 10,000 and a coherent range and page token) is refused
// with InvalidArgument and KIND_INVALID; an unknown keyspace with NotFound;
// a keyspace whose policy excludes the node with PermissionDenied and
// KIND_RESIDENCY; anything else is accepted. No error repeats a key or value.
func FuzzKVRequest(f *testing.F) {
	const (
		put = iota
		get
		del
		cas
		batch
		scan
		stream
		methods
	)
	const bigValue = 16 // flag: the value pad may reach past 1 MiB
	type seed struct {
		method     uint8
		keyspace   string
		key        []byte
		keyPad     uint16
		value      []byte
		valuePad   uint32
		ops        uint16
		flags      uint8
		start, end []byte
		prefix     []byte
		token      []byte
		limit      uint32
	}
	k, v := []byte("user:42"), []byte("hello")
	for _, s := range []seed{
		{method: put, keyspace: fuzzSharded, key: k, value: v},
		{method: put, keyspace: fuzzSharded, key: nil, value: v},                                            // empty key
		{method: put, keyspace: fuzzSharded, key: k, keyPad: 4096 - 7},                                      // key at the limit
		{method: put, keyspace: fuzzSharded, key: k, keyPad: 4096 - 6},                                      // one byte over
		{method: put, keyspace: fuzzSharded, key: k, valuePad: 1 << 20, flags: bigValue},                    // value at the limit
		{method: put, keyspace: fuzzSharded, key: k, valuePad: 1<<20 + 1, flags: bigValue},                  // one byte over
		{method: put, keyspace: "nope", key: k, value: v},                                                   // unknown keyspace
		{method: put, keyspace: fuzzElsewhere, key: k, value: v},                                            // residency
		{method: put, keyspace: "", key: nil, value: v},                                                     // nothing right
		{method: put, keyspace: fuzzSharded, key: []byte(fuzzSecret), valuePad: 1<<20 + 1, flags: bigValue}, // secret in an invalid request
		{method: get, keyspace: fuzzSharded, key: k},
		{method: get, keyspace: fuzzSharded, key: k, flags: 1},
		{method: del, keyspace: fuzzOneShard, key: k},
		{method: del, keyspace: fuzzOneShard, key: []byte{}},
		{method: cas, keyspace: fuzzSharded, key: k, value: v, flags: 0},
		{method: cas, keyspace: fuzzSharded, key: k, valuePad: 1<<20 + 1, flags: 2 | bigValue}, // delete ignores the value
		{method: cas, keyspace: fuzzSharded, key: k, valuePad: 1<<20 + 1, flags: bigValue},
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 3},
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 0},                           // empty
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 1000},                        // at the op limit
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 1001},                        // over it
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 2, flags: 1},                 // duplicate keys
		{method: batch, keyspace: fuzzOneShard, key: k, value: v, ops: 4, flags: 2 | 4},             // deletes, conditions
		{method: batch, keyspace: fuzzSharded, key: k, value: v, ops: 8},                            // spans shards
		{method: batch, keyspace: fuzzOneShard, key: k, valuePad: 1 << 20, flags: bigValue, ops: 4}, // 4 MiB of values plus keys
		{method: batch, keyspace: fuzzOneShard, key: k, keyPad: 4000, valuePad: 100, ops: 999},      // ~4 MiB
		{method: batch, keyspace: "nope", key: k, value: v, ops: 2},
		{method: scan, keyspace: fuzzSharded},
		{method: scan, keyspace: fuzzSharded, prefix: []byte("user:")},
		{method: scan, keyspace: fuzzSharded, prefix: []byte{0xff, 0xff}},
		{method: scan, keyspace: fuzzSharded, prefix: []byte("a"), start: []byte("a")},
		{method: scan, keyspace: fuzzSharded, start: []byte("b"), end: []byte("a")},
		{method: scan, keyspace: fuzzSharded, start: []byte("a"), end: []byte("c"), token: []byte("b\x00")},
		{method: scan, keyspace: fuzzSharded, start: []byte("a"), end: []byte("c"), token: []byte("d")},
		{method: scan, keyspace: fuzzSharded, prefix: []byte("u"), token: []byte("v")},
		{method: scan, keyspace: fuzzSharded, limit: 10000},
		{method: scan, keyspace: fuzzSharded, limit: 10001},
		{method: scan, keyspace: fuzzElsewhere},
		{method: stream, keyspace: fuzzSharded, key: k, value: v},
		{method: stream, keyspace: fuzzSharded, key: nil, value: v},
		{method: stream, keyspace: fuzzSharded, key: k, flags: 8}, // no operation
	} {
		f.Add(s.method, s.keyspace, s.key, s.keyPad, s.value, s.valuePad, s.ops, s.flags, s.start, s.end, s.prefix, s.token, s.limit)
	}

	node := fuzzNode("")
	kv := &kvService{s: node}
	f.Fuzz(func(t *testing.T, method uint8, keyspace string, key []byte, keyPad uint16, value []byte, valuePad uint32,
		nops uint16, flags uint8, start, end, prefix, token []byte, limit uint32) {
		key = fuzzPad(key, int(keyPad)%(keys.MaxKeyBytes+64), 'k')
		pad := int(valuePad) % (keys.MaxValueBytes + 64)
		if flags&bigValue == 0 {
			pad %= 256 // values near the limit cost time: only when asked
		}
		value = fuzzPad(value, pad, 'v')
		secret := bytes.Contains(key, []byte(fuzzSecret)) || bytes.Contains(value, []byte(fuzzSecret))
		ctx := context.Background()
		var e expected
		switch method % methods {
		case put:
			e.keyspace(keyspace)
			e.key(key)
			e.value(value)
			_, err := kv.Put(ctx, &pb.PutRequest{Keyspace: keyspace, Key: key, Value: value})
			e.check(t, "Put", err, secret, keyspace)
		case get:
			e.keyspace(keyspace)
			e.key(key)
			read := &pb.ReadOptions{}
			if flags&1 != 0 {
				read.Consistency = pb.Consistency_CONSISTENCY_FOLLOWER
			}
			_, err := kv.Get(ctx, &pb.GetRequest{Keyspace: keyspace, Key: key, Read: read})
			e.check(t, "Get", err, secret, keyspace)
		case del:
			e.keyspace(keyspace)
			e.key(key)
			_, err := kv.Delete(ctx, &pb.DeleteRequest{Keyspace: keyspace, Key: key})
			e.check(t, "Delete", err, secret, keyspace)
		case cas:
			e.keyspace(keyspace)
			e.key(key)
			req := &pb.CompareAndSwapRequest{Keyspace: keyspace, Key: key, Value: value, ExpectedVersion: uint64(nops), Delete: flags&2 != 0}
			if !req.Delete {
				e.value(value)
			}
			_, err := kv.CompareAndSwap(ctx, req)
			e.check(t, "CompareAndSwap", err, secret, keyspace)
		case batch:
			req := fuzzBatch(keyspace, key, value, int(nops)%(keys.MaxBatchOps+8), flags)
			e = expectBatch(req)
			_, err := kv.Batch(ctx, req)
			e.check(t, "Batch", err, secret, keyspace)
		case scan:
			req := &pb.ScanRequest{Keyspace: keyspace, Prefix: prefix, Start: start, End: end, PageToken: token, Limit: limit, KeysOnly: flags&1 != 0}
			e = expectScan(req)
			_, err := kv.Scan(ctx, req)
			e.check(t, "Scan", err, secret, keyspace)
		case stream:
			// A stream request is answered as its unary method would be.
			op := &pb.StreamOp{Id: uint64(nops)}
			if flags&8 == 0 {
				op.Op = &pb.StreamOp_Put{Put: &pb.PutRequest{Keyspace: keyspace, Key: key, Value: value}}
				e.keyspace(keyspace)
				e.key(key)
				e.value(value)
			} else {
				e.bad("no operation")
			}
			res := kv.streamOp(ctx, op)
			se := res.GetError()
			if res.GetId() != op.Id || se == nil {
				t.Fatalf("stream result %v for request %d", res, op.Id)
			}
			st := status.New(codes.Code(se.Code), se.Message)
			if se.Detail != nil {
				st, _ = st.WithDetails(se.Detail)
			}
			e.check(t, "Stream", st.Err(), secret, keyspace)
		}
	})
}

// fuzzBatch builds a batch of n ops from one key and value: op i writes key
// followed by i (or key itself, for all of them, with flags&1), every other
// op deletes with flags&2, and ops carry an expected version with flags&4.
func fuzzBatch(keyspace string, key, value []byte, n int, flags uint8) *pb.BatchRequest {
	req := &pb.BatchRequest{Keyspace: keyspace}
	for i := range n {
		op := &pb.BatchOp{Key: key, Value: value}
		if flags&1 == 0 {
			op.Key = binary.BigEndian.AppendUint16(append([]byte(nil), key...), uint16(i))
		}
		if flags&2 != 0 && i%2 == 1 {
			op.Kind, op.Value = pb.BatchOp_KIND_DELETE, nil
		}
		if flags&4 != 0 {
			op.HasExpectedVersion, op.ExpectedVersion = true, uint64(i)
		}
		req.Ops = append(req.Ops, op)
	}
	return req
}

func expectBatch(req *pb.BatchRequest) expected {
	var e expected
	if len(req.Ops) == 0 {
		e.bad("empty batch")
		return e // refused before the keyspace is looked up
	}
	e.keyspace(req.Keyspace)
	if len(req.Ops) > keys.MaxBatchOps {
		e.bad(strconv.Itoa(len(req.Ops)) + " ops")
	}
	shards := 1
	if req.Keyspace == fuzzSharded {
		shards = 8
	}
	size := 0
	seen := map[string]bool{}
	for _, o := range req.Ops {
		e.key(o.Key)
		e.value(o.Value)
		size += len(o.Key) + len(o.Value)
		if seen[string(o.Key)] {
			e.bad("duplicate key")
		}
		seen[string(o.Key)] = true
		if keys.ShardIndex(keys.Hash(o.Key), shards) != keys.ShardIndex(keys.Hash(req.Ops[0].Key), shards) {
			e.bad("spans shards")
		}
	}
	if size > 4<<20 {
		e.bad(strconv.Itoa(size) + " bytes")
	}
	return e
}

func expectScan(req *pb.ScanRequest) expected {
	var e expected
	e.keyspace(req.Keyspace)
	start, end := req.Start, req.End
	if len(req.Prefix) > 0 {
		if len(req.Start) > 0 || len(req.End) > 0 {
			e.bad("prefix and range")
		}
		start, end = req.Prefix, nil
		// The range of a prefix ends at the prefix without its trailing
		// 0xff bytes, its last byte incremented; all 0xff: unbounded.
		p := bytes.TrimRight(req.Prefix, "\xff")
		if len(p) > 0 {
			end = append(bytes.Clone(p[:len(p)-1]), p[len(p)-1]+1)
		}
	}
	if len(req.PageToken) > 0 {
		if bytes.Compare(req.PageToken, start) < 0 || (len(end) > 0 && bytes.Compare(req.PageToken, end) > 0) {
			e.bad("page token outside the scan")
		}
		start = req.PageToken
	}
	if len(end) > 0 && bytes.Compare(start, end) > 0 {
		e.bad("start after end")
	}
	if req.Limit > 10000 {
		e.bad("limit over 10000")
	}
	return e
}

// FuzzCreateKeyspace sends fuzzed CreateKeyspace requests through the meta
// leader's validation. A request is refused with InvalidArgument and
// KIND_INVALID exactly when its name is not 1-64 characters of a-z, 0-9,
// '_', '-' starting with a letter or digit, it has no policy, its shard
// count is outside 1..1024 (0 = 8), or its policy (replicas 0 = 3, class
// "" = personal) fails the catalogue's checks. The node's catalogue already
// holds a keyspace of the requested name, so a request that passes every
// check ends as AlreadyExists without placing anything.
func FuzzCreateKeyspace(f *testing.F) {
	type seed struct {
		name                 string
		noPolicy             bool
		allowJ, allowC, deny string
		replicas             uint32
		leaders, class       string
		shards               uint32
	}
	for _, s := range []seed{
		{name: "orders", allowJ: "EEA"},
		{name: "orders", allowJ: "EU", allowC: "CH", deny: "DE", replicas: 5, leaders: "ie-dublin,de-frankfurt", class: "public", shards: 64},
		{name: "a", replicas: 1, shards: 1},
		{name: strings.Repeat("a", 64), shards: 1024},
		{name: strings.Repeat("a", 65)},
		{name: "0_x-y"},
		{name: "_x"},
		{name: "Orders"},
		{name: ""},
		{name: "orders\n"},
		{name: "orders", noPolicy: true},
		{name: "orders", shards: 1025},
		{name: "orders", replicas: 8},
		{name: "orders", allowJ: "MARS"},
		{name: "orders", allowJ: "eea"},
		{name: "orders", allowC: "XX"},
		{name: "orders", allowC: "ie"},
		{name: "orders", allowC: "IE,IE"},
		{name: "orders", allowC: "IE", deny: "IE"},
		{name: "orders", leaders: "Dublin"},
		{name: "orders", class: "Personal"},
		{name: "orders", class: "secret"},
		{name: "orders", replicas: 4294967295},
	} {
		f.Add(s.name, s.noPolicy, s.allowJ, s.allowC, s.deny, s.replicas, s.leaders, s.class, s.shards)
	}
	cat := placement.DefaultCatalogue()
	f.Fuzz(func(t *testing.T, name string, noPolicy bool, allowJ, allowC, deny string, replicas uint32, leaders, class string, shards uint32) {
		req := &pb.CreateKeyspaceRequest{Name: name, Shards: shards}
		if !noPolicy {
			req.Policy = &pb.Policy{AllowJurisdictions: fuzzList(allowJ), AllowCountries: fuzzList(allowC),
				DenyCountries: fuzzList(deny), Replicas: replicas, LeaderPreference: fuzzList(leaders), DataClass: class}
		}
		var why []string
		if !fuzzKeyspaceName(name) {
			why = append(why, "name")
		}
		if req.Policy == nil {
			why = append(why, "no policy")
		}
		if shards > 1024 {
			why = append(why, "shards")
		}
		var policy placement.Policy
		if req.Policy != nil {
			policy = placement.Policy{AllowJurisdictions: req.Policy.AllowJurisdictions, AllowCountries: req.Policy.AllowCountries,
				DenyCountries: req.Policy.DenyCountries, Replicas: int(replicas), LeaderPreference: req.Policy.LeaderPreference,
				Class: placement.DataClass(class)}
			if policy.Replicas == 0 {
				policy.Replicas = 3
			}
			if policy.Class == "" {
				policy.Class = placement.ClassPersonal
			}
			if err := cat.ValidatePolicy(policy); err != nil {
				why = append(why, "policy: "+err.Error())
			}
		}

		s := fuzzNode(name)
		_, err := s.createKeyspace(context.Background(), req)
		err = toStatus(err)
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.InvalidArgument:
			if len(why) == 0 {
				t.Fatalf("CreateKeyspace %q refused as invalid although valid: %v", name, err)
			}
			if d := errorDetail(err); d.GetKind() != pb.ErrorDetail_KIND_INVALID {
				t.Fatalf("InvalidArgument with detail kind %v, want KIND_INVALID", d.GetKind())
			}
		case codes.AlreadyExists:
			if len(why) > 0 {
				t.Fatalf("CreateKeyspace %q passed validation although %v", name, why)
			}
			// What passes meets the documented limits.
			if policy.Replicas < 1 || policy.Replicas > 7 || (policy.Class != placement.ClassPersonal && policy.Class != placement.ClassPublic) {
				t.Fatalf("accepted policy %v", policy)
			}
			for _, j := range policy.AllowJurisdictions {
				if _, ok := cat.Countries(j); !ok {
					t.Fatalf("accepted unknown jurisdiction %q", j)
				}
			}
			for _, c := range append(append([]string(nil), policy.AllowCountries...), policy.DenyCountries...) {
				if !placement.IsCountry(c) {
					t.Fatalf("accepted unknown country %q", c)
				}
			}
			if countries, _ := cat.PermittedCountries(policy); len(countries) == 0 {
				t.Fatalf("accepted policy %v that permits no country", policy)
			}
		default:
			t.Fatalf("CreateKeyspace %q: unexpected outcome %v", name, err)
		}
	})
}

// fuzzKeyspaceName is the documented keyspace name rule: 1 to 64 characters
// of a-z, 0-9, '_' and '-', the first a letter or digit.
func fuzzKeyspaceName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// fuzzList splits a comma-separated list; "" is the empty list.
func fuzzList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
