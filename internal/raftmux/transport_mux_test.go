package raftmux

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// openTransport registers shard on m and closes its transport at cleanup.
func openTransport(t *testing.T, m testMux, shard uint64, g Guard) *Transport {
	t.Helper()
	tr, err := m.Transport(shard, g, TransportConfig{Timeout: 2 * time.Second, MaxRPCsInFlight: 1})
	if err != nil {
		t.Fatalf("transport of shard %d: %v", shard, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// answerAppends serves tr's queued RPCs like a follower that accepts every
// append: LastLog is the last entry's index and Term echoes the request.
func answerAppends(t *testing.T, tr *Transport) {
	t.Helper()
	go func() {
		for {
			select {
			case rpc := <-tr.Consumer():
				rpc.Respond(appendAnswer(rpc.Command), nil)
			case <-tr.done:
				return
			}
		}
	}()
}

func appendAnswer(cmd any) any {
	req, ok := cmd.(*raft.AppendEntriesRequest)
	if !ok {
		return nil
	}
	last := req.PrevLogEntry
	if n := len(req.Entries); n > 0 {
		last = req.Entries[n-1].Index
	}
	return &raft.AppendEntriesResponse{RPCHeader: raft.RPCHeader{ID: []byte("follower")}, Term: req.Term, LastLog: last, Success: true}
}

func appendReq(term, prev uint64, sizes ...int) *raft.AppendEntriesRequest {
	req := &raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("leader"), Addr: []byte("127.0.0.1:1")},
		Term:              term,
		PrevLogEntry:      prev,
		PrevLogTerm:       term,
		LeaderCommitIndex: prev,
	}
	for i, n := range sizes {
		req.Entries = append(req.Entries, &raft.Log{Index: prev + uint64(i) + 1, Term: term, Type: raft.LogCommand, Data: bytes.Repeat([]byte{'x'}, n)})
	}
	return req
}

func heartbeat(term uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("leader"), Addr: []byte("127.0.0.1:1")},
		Term:      term,
	}
}

func TestFrameRoundTrip(t *testing.T) {
	hdr := raft.RPCHeader{ProtocolVersion: 3, ID: []byte("n1"), Addr: []byte("10.0.0.1:7001")}
	empty := raft.RPCHeader{ID: []byte{}}
	requests := map[rpcType][]any{
		rpcAppendEntries: {
			&raft.AppendEntriesRequest{RPCHeader: hdr, Term: 7, Leader: []byte("10.0.0.1:7001"), PrevLogEntry: 1 << 40, PrevLogTerm: 6, LeaderCommitIndex: 99,
				Entries: []*raft.Log{
					{Index: 1<<40 + 1, Term: 7, Type: raft.LogCommand, Data: []byte("put k v"), Extensions: []byte{1, 2}, AppendedAt: time.Unix(0, 1_700_000_000_123_456_789)},
					{Index: 1<<40 + 2, Term: 7, Type: raft.LogNoop},
					{Index: 1<<40 + 3, Term: 7, Type: raft.LogConfiguration, Data: []byte{}, AppendedAt: time.Unix(0, -5)},
				}},
			heartbeat(3),
			&raft.AppendEntriesRequest{RPCHeader: empty},
		},
		rpcRequestVote: {
			&raft.RequestVoteRequest{RPCHeader: hdr, Term: 9, Candidate: []byte("c"), LastLogIndex: 12, LastLogTerm: 8, LeadershipTransfer: true},
			&raft.RequestVoteRequest{RPCHeader: hdr, Term: ^uint64(0)},
		},
		rpcRequestPreVote: {&raft.RequestPreVoteRequest{RPCHeader: hdr, Term: 4, LastLogIndex: 3, LastLogTerm: 2}},
		rpcTimeoutNow:     {&raft.TimeoutNowRequest{RPCHeader: hdr}},
	}
	for typ, reqs := range requests {
		for i, req := range reqs {
			body, err := encodeRequest(nil, req)
			if err != nil {
				t.Fatalf("%s %d: encode: %v", typ, i, err)
			}
			got, err := decodeRequest(typ, body)
			if err != nil {
				t.Fatalf("%s %d: decode: %v", typ, i, err)
			}
			if !reflect.DeepEqual(got, req) {
				t.Fatalf("%s %d: round trip\n got %+v\nwant %+v", typ, i, got, req)
			}
			if _, err := decodeRequest(typ, body[:len(body)-1]); err == nil && len(body) > 0 {
				t.Errorf("%s %d: a truncated body decoded", typ, i)
			}
			if _, err := decodeRequest(typ, append(body, 0)); err == nil {
				t.Errorf("%s %d: a body with a trailing byte decoded", typ, i)
			}
		}
	}
	responses := map[rpcType][]any{
		rpcAppendEntries:  {&raft.AppendEntriesResponse{RPCHeader: hdr, Term: 5, LastLog: 77, Success: true, NoRetryBackoff: true}, &raft.AppendEntriesResponse{}},
		rpcRequestVote:    {&raft.RequestVoteResponse{RPCHeader: hdr, Term: 5, Peers: []byte("p"), Granted: true}},
		rpcRequestPreVote: {&raft.RequestPreVoteResponse{RPCHeader: hdr, Term: 5, Granted: true}},
		rpcTimeoutNow:     {&raft.TimeoutNowResponse{RPCHeader: hdr}},
	}
	for typ, resps := range responses {
		for i, resp := range resps {
			body, err := encodeResponse(nil, typ, resp)
			if err != nil {
				t.Fatalf("%s %d: encode: %v", typ, i, err)
			}
			got := reflect.New(reflect.TypeOf(resp).Elem()).Interface()
			if err := decodeResponse(typ, body, got); err != nil {
				t.Fatalf("%s %d: decode: %v", typ, i, err)
			}
			if !reflect.DeepEqual(got, resp) {
				t.Fatalf("%s %d: round trip\n got %+v\nwant %+v", typ, i, got, resp)
			}
		}
	}
	if _, err := encodeResponse(nil, rpcRequestVote, &raft.AppendEntriesResponse{}); err == nil {
		t.Error("an append response encoded as the answer to a vote")
	}
	if err := decodeResponse(rpcRequestVote, nil, &raft.AppendEntriesResponse{}); !errors.Is(err, errMalformed) {
		t.Errorf("a vote answer decoded into an append response: %v", err)
	}
}

// FuzzDecodeRequest: no body makes the decoder panic or allocate without
// bound, and whatever decodes encodes back to a body that decodes the same.
func FuzzDecodeRequest(f *testing.F) {
	for _, req := range []any{appendReq(3, 10, 5, 0, 9), heartbeat(2), &raft.RequestVoteRequest{Term: 1, Candidate: []byte("c")}} {
		body, _ := encodeRequest(nil, req)
		f.Add(byte(rpcAppendEntries), body)
		f.Add(byte(rpcRequestVote), body)
	}
	f.Add(byte(rpcAppendEntries), []byte{0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		rpc := rpcType(typ % byte(rpcTypeUpperBound))
		req, err := decodeRequest(rpc, body)
		if err != nil {
			return
		}
		again, err := encodeRequest(nil, req)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", req, err)
		}
		req2, err := decodeRequest(rpc, again)
		if err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("re-encoded request differs: %v", err)
		}
	})
}

func TestParseHeaderRejects(t *testing.T) {
	var h [frameHeaderLen]byte
	b, start := beginFrame(nil, kindRequest, rpcAppendEntries, 1, 2)
	copy(h[:], endFrame(b, start))
	if f, n, err := parseHeader(&h); err != nil || n != 0 || f.shard != 1 || f.id != 2 {
		t.Fatalf("valid header: %+v %d %v", f, n, err)
	}
	bad := h
	bad[4] = 9
	if _, _, err := parseHeader(&bad); !errors.Is(err, errMalformed) {
		t.Errorf("unknown kind: %v", err)
	}
	bad = h
	bad[5] = byte(rpcTypeUpperBound)
	if _, _, err := parseHeader(&bad); !errors.Is(err, errMalformed) {
		t.Errorf("unknown rpc: %v", err)
	}
	bad = h
	bad[0] = 0xff
	if _, _, err := parseHeader(&bad); !errors.Is(err, errMalformed) {
		t.Errorf("oversized body: %v", err)
	}
}

// Every shard's RPCs between two nodes share one connection.
func TestShardsShareOneConnection(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	const shards = 5
	var senders []*Transport
	for s := uint64(1); s <= shards; s++ {
		senders = append(senders, openTransport(t, a, s, AllowAll{}))
		answerAppends(t, openTransport(t, b, s, AllowAll{}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, shards*20)
	for i, tr := range senders {
		for j := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp raft.AppendEntriesResponse
				prev := uint64(100*i + 10*j)
				if err := tr.AppendEntries("b", b.addr(), appendReq(2, prev, 16, 300), &resp); err != nil {
					errs <- err
					return
				}
				if !resp.Success || resp.LastLog != prev+2 || resp.Term != 2 || string(resp.ID) != "follower" {
					errs <- fmt.Errorf("shard %d: answer %+v", i+1, resp)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.accepts.Load(); n != 1 {
		t.Fatalf("b accepted %d connections for %d shards, want 1", n, shards)
	}
}

// A shard whose Raft main loop does not take RPCs (as while it syncs its
// log) still answers heartbeats, and holds up no other shard's appends.
func TestBusyShardHoldsUpNothing(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	busyA, freeA := openTransport(t, a, 1, AllowAll{}), openTransport(t, a, 2, AllowAll{})
	busyB := openTransport(t, b, 1, AllowAll{}) // nothing reads its Consumer
	answerAppends(t, openTransport(t, b, 2, AllowAll{}))
	var beats sync.WaitGroup
	busyB.SetHeartbeatHandler(func(rpc raft.RPC) {
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	})

	stuck := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		stuck <- busyA.AppendEntries("b", b.addr(), appendReq(1, 5, 10), &resp)
	}()
	for range 3 {
		beats.Add(1)
		var resp raft.AppendEntriesResponse
		if err := busyA.AppendEntries("b", b.addr(), heartbeat(4), &resp); err != nil || !resp.Success || resp.Term != 4 {
			t.Fatalf("heartbeat to the busy shard: %+v, %v", resp, err)
		}
		beats.Done()
		if err := freeA.AppendEntries("b", b.addr(), appendReq(1, 5, 10), &resp); err != nil || !resp.Success {
			t.Fatalf("append to the free shard: %+v, %v", resp, err)
		}
	}
	select {
	case err := <-stuck:
		t.Fatalf("the busy shard's append returned (%v) though nothing served it", err)
	default:
	}
	// Closing the sender ends the wait.
	_ = busyA.Close()
	if err := <-stuck; !errors.Is(err, raft.ErrTransportShutdown) {
		t.Fatalf("append after Close: %v, want ErrTransportShutdown", err)
	}
}

func TestUnknownShardAndGuards(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	tr := openTransport(t, a, 1, AllowAll{})
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("b", b.addr(), heartbeat(1), &resp); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("rpc for a shard b does not hold: %v, want ErrUnknownShard", err)
	}

	refusing := &testGuard{acceptErr: errors.New("keyspace users may not be held at US")}
	answerAppends(t, openTransport(t, b, 1, refusing))
	err := tr.AppendEntries("b", b.addr(), appendReq(1, 0, 8), &resp)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "may not be held at US") {
		t.Fatalf("rpc to a node that may not hold the shard: %v, want ErrRefused with the reason", err)
	}

	c := newMux(t, Config{})
	deny := &testGuard{}
	deny.denyTarget(c.addr())
	tc := openTransport(t, a, 2, deny)
	answerAppends(t, openTransport(t, c, 2, AllowAll{}))
	if err := tc.AppendEntries("c", c.addr(), appendReq(1, 0, 8), &resp); !errors.Is(err, ErrResidency) {
		t.Fatalf("rpc to a refused target: %v, want ErrResidency", err)
	}
	var vote raft.RequestVoteResponse
	if err := tc.RequestVote("c", c.addr(), &raft.RequestVoteRequest{Term: 2}, &vote); !errors.Is(err, ErrResidency) {
		t.Fatalf("vote request to a refused target: %v, want ErrResidency", err)
	}
	if n := c.accepts.Load(); n != 0 {
		t.Fatalf("c accepted %d connections; a refused target must never be dialed", n)
	}
}

// A call the peer never answers times out; as nothing at all arrived, the
// connection is taken as dead and the next call opens a new one.
func TestUnansweredCallTimesOut(t *testing.T) {
	a, b := newMux(t, Config{RPCTimeout: 150 * time.Millisecond}), newMux(t, Config{})
	tr := openTransport(t, a, 1, AllowAll{})
	openTransport(t, b, 1, AllowAll{}) // never answers
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("b", b.addr(), appendReq(1, 0, 8), &resp); !errors.Is(err, errCallTimeout) {
		t.Fatalf("unanswered call: %v, want a timeout", err)
	}
	waitFor(t, 5*time.Second, "the silent connection to close", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.conns) == 0
	})
	answerAppends(t, openTransport(t, b, 2, AllowAll{}))
	tr2 := openTransport(t, a, 2, AllowAll{})
	if err := tr2.AppendEntries("b", b.addr(), appendReq(1, 0, 8), &resp); err != nil {
		t.Fatalf("call after the dead connection closed: %v", err)
	}
	if n := b.accepts.Load(); n != 2 {
		t.Fatalf("b accepted %d connections, want 2 (the dead one, then a new one)", n)
	}
}

// A node that restarts on the same address is reached again once the old
// connection has failed.
func TestPeerRestartIsRedialed(t *testing.T) {
	a := newMux(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	b := New(ln, Config{})
	trB, err := b.Transport(1, AllowAll{}, TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	answerAppends(t, trB)
	tr := openTransport(t, a, 1, AllowAll{})
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("b", raft.ServerAddress(addr), appendReq(1, 0, 8), &resp); err != nil {
		t.Fatal(err)
	}
	_ = trB.Close()
	_ = b.Close()

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	b2 := New(ln2, Config{})
	t.Cleanup(func() { _ = b2.Close() })
	tr2, err := b2.Transport(1, AllowAll{}, TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr2.Close() })
	answerAppends(t, tr2)
	waitFor(t, 5*time.Second, "an append to the restarted node", func() bool {
		return tr.AppendEntries("b", raft.ServerAddress(addr), appendReq(1, 0, 8), &resp) == nil
	})
}

// A node that speaks only per-shard connections (version 1) is served over
// them, both ways.
func TestVersionOnePeerFallsBack(t *testing.T) {
	a, old := newMux(t, Config{}), newMux(t, Config{v1Only: true})
	tr := openTransport(t, a, 1, AllowAll{})
	answerAppends(t, openTransport(t, old, 1, AllowAll{}))
	for range 3 {
		var resp raft.AppendEntriesResponse
		if err := tr.AppendEntries("old", old.addr(), appendReq(1, 4, 8), &resp); err != nil || !resp.Success || resp.LastLog != 5 {
			t.Fatalf("append to a version-1 node: %+v, %v", resp, err)
		}
	}
	// One refused multiplexed dial, then one pooled per-shard connection.
	if n := old.accepts.Load(); n != 2 {
		t.Fatalf("version-1 node accepted %d connections, want 2", n)
	}
	// The old node's own RPCs arrive on a's per-shard connections.
	back := openTransport(t, old, 2, AllowAll{})
	answerAppends(t, openTransport(t, a, 2, AllowAll{}))
	var resp raft.AppendEntriesResponse
	if err := back.AppendEntries("a", a.addr(), appendReq(1, 0, 8), &resp); err != nil || !resp.Success {
		t.Fatalf("append from a version-1 node: %+v, %v", resp, err)
	}
}

// An append too big for the shared connection goes over the shard's own.
func TestLargeAppendUsesShardConnection(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	tr := openTransport(t, a, 1, AllowAll{})
	answerAppends(t, openTransport(t, b, 1, AllowAll{}))
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("b", b.addr(), appendReq(1, 0, 600<<10, 600<<10), &resp); err != nil || resp.LastLog != 2 {
		t.Fatalf("large append: %+v, %v", resp, err)
	}
	a.mu.Lock()
	muxConns := len(a.conns)
	a.mu.Unlock()
	if muxConns != 0 {
		t.Fatalf("a large append opened %d multiplexed connections, want 0", muxConns)
	}
	if err := tr.AppendEntries("b", b.addr(), appendReq(1, 2, 100), &resp); err != nil || resp.LastLog != 3 {
		t.Fatalf("small append: %+v, %v", resp, err)
	}
	if n := b.accepts.Load(); n != 2 {
		t.Fatalf("b accepted %d connections, want 2 (the shard's own, then the shared one)", n)
	}
}

// A 3-node group in which one node speaks only version 1 replicates.
func TestMixedVersionGroupReplicates(t *testing.T) {
	runShards(t, []testMux{newMux(t, Config{}), newMux(t, Config{v1Only: true}), newMux(t, Config{})}, 2)
}

// Three shards on three nodes: each node accepts one connection from each
// other node, whatever the number of shards.
func TestGroupsUseOneConnectionPerNodePair(t *testing.T) {
	muxes := []testMux{newMux(t, Config{}), newMux(t, Config{}), newMux(t, Config{})}
	runShards(t, muxes, 4)
	for i, m := range muxes {
		if n := m.accepts.Load(); n != int64(len(muxes)-1) {
			t.Errorf("node %d accepted %d connections for 4 shards, want %d", i, n, len(muxes)-1)
		}
	}
}

// A follower that missed entries the leader has compacted away gets a
// snapshot, over the shard's own connection.
func TestSnapshotInstalledOverShardConnection(t *testing.T) {
	muxes := []testMux{newMux(t, Config{}), newMux(t, Config{}), newMux(t, Config{})}
	ids := []raft.ServerID{"s0", "s1", "s2"}
	conf := func(id raft.ServerID) *raft.Config {
		c := testRaftConfig(t, id)
		c.TrailingLogs = 2
		c.SnapshotThreshold = 1 << 30
		return c
	}
	const shard = 4
	r0 := startReplicaWith(t, muxes[0], conf(ids[0]), shard, AllowAll{}, servers(ids, muxes))
	r1 := startReplicaWith(t, muxes[1], conf(ids[1]), shard, AllowAll{}, nil)
	leader := waitLeader(t, "shard 4 with two of three", r0, r1)
	want := commands(shard, 20)
	applyAll(t, leader, want)
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	before := muxes[2].accepts.Load()
	r2 := startReplicaWith(t, muxes[2], conf(ids[2]), shard, AllowAll{}, nil)
	waitApplied(t, "the late replica", want, r2)
	if got := r2.raft.Stats()["last_snapshot_index"]; got == "0" {
		t.Fatalf("the late replica caught up without a snapshot (last_snapshot_index %s)", got)
	}
	// The shared connection was open already (the leader's heartbeats
	// reached the node before the replica was); the snapshot took its own.
	if n := muxes[2].accepts.Load() - before; n < 1 {
		t.Fatalf("the late replica accepted %d connections, want the snapshot's own", n)
	}
}

// Close of a Mux closes its multiplexed connections; the peer sees its
// side close too.
func TestMuxCloseClosesSharedConnections(t *testing.T) {
	a, b := newMux(t, Config{}), newMux(t, Config{})
	tr := openTransport(t, a, 1, AllowAll{})
	answerAppends(t, openTransport(t, b, 1, AllowAll{}))
	var resp raft.AppendEntriesResponse
	if err := tr.AppendEntries("b", b.addr(), appendReq(1, 0, 8), &resp); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	waitFor(t, 5*time.Second, "b's side to close", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.conns) == 0
	})
	if err := tr.AppendEntries("b", b.addr(), appendReq(1, 0, 8), &resp); err == nil {
		t.Fatal("rpc over a closed Mux succeeded")
	}
}

// Routine heartbeats wait at the Mux's gate so that many shards' leave
// together; a shard marked Urgent (a leader confirming its leadership for a
// read) sends at once, and marking it releases a heartbeat already held.
func TestHeartbeatGate(t *testing.T) {
	a := newMux(t, Config{HeartbeatAlign: time.Hour}) // the gate never opens in this test
	b := newMux(t, Config{})
	const shards = 4
	var senders []*Transport
	served := make(chan uint64, 16)
	for s := uint64(1); s <= shards; s++ {
		senders = append(senders, openTransport(t, a, s, AllowAll{}))
		rb := openTransport(t, b, s, AllowAll{})
		rb.SetHeartbeatHandler(func(rpc raft.RPC) {
			served <- s
			rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
		})
	}
	beat := func(tr *Transport) error {
		var resp raft.AppendEntriesResponse
		if err := tr.AppendEntries("b", b.addr(), heartbeat(3), &resp); err != nil {
			return err
		}
		if !resp.Success || resp.Term != 3 {
			return fmt.Errorf("answer %+v", resp)
		}
		return nil
	}
	held := make([]chan error, 3)
	for i := range held {
		held[i] = make(chan error, 1)
		go func() { held[i] <- beat(senders[i]) }()
	}
	// An urgent shard's heartbeat is answered while the others wait.
	done := senders[3].Urgent()
	if err := beat(senders[3]); err != nil {
		t.Fatalf("urgent heartbeat: %v", err)
	}
	done()
	if s := <-served; s != 4 {
		t.Fatalf("shard %d's heartbeat was served before the gate opened", s)
	}
	// Marking shard 1 urgent releases its held heartbeat (or lets it
	// bypass the gate, if it had not reached it yet).
	done = senders[0].Urgent()
	if err := <-held[0]; err != nil {
		t.Fatalf("released heartbeat: %v", err)
	}
	done()
	if s := <-served; s != 1 {
		t.Fatalf("served shard %d, want 1", s)
	}
	select {
	case s := <-served:
		t.Fatalf("shard %d's routine heartbeat passed the closed gate", s)
	case err := <-held[1]:
		t.Fatalf("shard 2's routine heartbeat returned (%v) before the gate opened", err)
	default:
	}
	// Closing a transport ends its wait at the gate.
	_ = senders[1].Close()
	if err := <-held[1]; err == nil {
		t.Fatal("heartbeat of a closed transport succeeded")
	}
	_ = senders[2].Close()
	<-held[2]

	// With a gate that opens, routine heartbeats are all answered.
	c := newMux(t, Config{HeartbeatAlign: 5 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, shards)
	for s := uint64(1); s <= shards; s++ {
		tr := openTransport(t, c, s, AllowAll{})
		wg.Add(1)
		go func() { defer wg.Done(); errs <- beat(tr) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("routine heartbeat through an opening gate: %v", err)
		}
	}
}
