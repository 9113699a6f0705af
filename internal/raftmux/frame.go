package raftmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// A multiplexed connection (handshake version 2) carries frames of every
// shard between two nodes. Every frame is
//
//	length (4 bytes, big-endian: the bytes after this field)
//	kind (1) | rpc (1) | shard (8, big-endian) | call id (8, big-endian)
//	body
//
// The dialer sends requests; the acceptor answers each with a response or an
// error frame carrying the request's call id, in any order. A request body is
// the RPC's fields in a fixed order: unsigned integers as uvarints, byte
// strings as a uvarint of length+1 (0 is nil) followed by the bytes, flags
// packed into one byte. An error body is a code byte and a text.
const (
	frameHeaderLen = 4 + 1 + 1 + 8 + 8
	// maxFrameBody bounds what a reader accepts; a larger frame ends the
	// connection. Appends too big for a frame go over the shard's own
	// connection instead (see inlineAppendLimit).
	maxFrameBody = 8 << 20
	// inlineAppendLimit: an AppendEntries whose entries hold more bytes than
	// this is sent over the shard's own connection, so one shard's large
	// batch never holds up the heartbeats of the others on the shared one.
	inlineAppendLimit = 1 << 20
	maxErrorText      = 512
)

type frameKind byte

const (
	kindRequest  frameKind = 1
	kindResponse frameKind = 2
	kindError    frameKind = 3
)

type rpcType byte

const (
	rpcAppendEntries   rpcType = 0
	rpcRequestVote     rpcType = 1
	rpcTimeoutNow      rpcType = 3
	rpcRequestPreVote  rpcType = 4
	rpcTypeUpperBound  rpcType = 5
	errCodeUnknown     byte    = 1
	errCodeRefused     byte    = 2
	errCodeRaft        byte    = 3
	errCodeUnsupported byte    = 4
)

func (t rpcType) String() string {
	switch t {
	case rpcAppendEntries:
		return "AppendEntries"
	case rpcRequestVote:
		return "RequestVote"
	case rpcTimeoutNow:
		return "TimeoutNow"
	case rpcRequestPreVote:
		return "RequestPreVote"
	}
	return fmt.Sprintf("rpc(%d)", byte(t))
}

// errMalformed reports a frame body that does not decode.
var errMalformed = errors.New("raftmux: malformed frame")

type frame struct {
	kind  frameKind
	rpc   rpcType
	shard uint64
	id    uint64
	body  []byte
}

// beginFrame appends a frame header with a placeholder length; endFrame
// fills the length in once the body is appended.
func beginFrame(b []byte, kind frameKind, rpc rpcType, shard, id uint64) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(kind), byte(rpc))
	b = binary.BigEndian.AppendUint64(b, shard)
	b = binary.BigEndian.AppendUint64(b, id)
	return b, start
}

func endFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// parseHeader decodes a frame header; the body length is returned.
func parseHeader(h *[frameHeaderLen]byte) (frame, int, error) {
	n := int(binary.BigEndian.Uint32(h[0:4])) - (frameHeaderLen - 4)
	if n < 0 || n > maxFrameBody {
		return frame{}, 0, fmt.Errorf("%w: body of %d bytes", errMalformed, n)
	}
	f := frame{
		kind:  frameKind(h[4]),
		rpc:   rpcType(h[5]),
		shard: binary.BigEndian.Uint64(h[6:14]),
		id:    binary.BigEndian.Uint64(h[14:22]),
	}
	if f.kind < kindRequest || f.kind > kindError || f.rpc >= rpcTypeUpperBound {
		return frame{}, 0, fmt.Errorf("%w: kind %d rpc %d", errMalformed, f.kind, f.rpc)
	}
	return f, n, nil
}

func appendErrorFrame(b []byte, rpc rpcType, shard, id uint64, code byte, text string) []byte {
	if len(text) > maxErrorText {
		text = text[:maxErrorText]
	}
	b, start := beginFrame(b, kindError, rpc, shard, id)
	b = append(b, code)
	b = append(b, text...)
	return endFrame(b, start)
}

func putUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func putBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p))+1)
	return append(b, p...)
}

func putFlags(b []byte, flags ...bool) []byte {
	var v byte
	for i, f := range flags {
		if f {
			v |= 1 << i
		}
	}
	return append(b, v)
}

func putHeader(b []byte, h raft.RPCHeader) []byte {
	b = putUvarint(b, uint64(h.ProtocolVersion))
	b = putBytes(b, h.ID)
	return putBytes(b, h.Addr)
}

// decoder reads a frame body; the first error sticks and later reads return
// zero values. Byte strings alias the body.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errMalformed, what)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.b)) {
		d.fail("byte string past the end")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) flags() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("missing flags")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) header() raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersion(d.uvarint()),
		ID:              d.bytes(),
		Addr:            d.bytes(),
	}
}

// done reports the decoder's error, or one for bytes left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d bytes left over", len(d.b)))
	}
	return d.err
}

// appendEntriesSize is the number of entry payload bytes of req, which
// decides whether it fits the shared connection.
func appendEntriesSize(req *raft.AppendEntriesRequest) int {
	n := 0
	for _, e := range req.Entries {
		n += len(e.Data) + len(e.Extensions) + 32
	}
	return n
}

// encodeRequest appends the body of a request.
func encodeRequest(b []byte, args any) ([]byte, error) {
	switch a := args.(type) {
	case *raft.AppendEntriesRequest:
		b = putHeader(b, a.RPCHeader)
		b = putUvarint(b, a.Term)
		b = putBytes(b, a.Leader)
		b = putUvarint(b, a.PrevLogEntry)
		b = putUvarint(b, a.PrevLogTerm)
		b = putUvarint(b, a.LeaderCommitIndex)
		b = putUvarint(b, uint64(len(a.Entries)))
		for _, e := range a.Entries {
			b = putUvarint(b, e.Index)
			b = putUvarint(b, e.Term)
			b = append(b, byte(e.Type))
			b = putBytes(b, e.Data)
			b = putBytes(b, e.Extensions)
			var at int64
			if !e.AppendedAt.IsZero() {
				at = e.AppendedAt.UnixNano()
			}
			b = binary.AppendVarint(b, at)
		}
	case *raft.RequestVoteRequest:
		b = putHeader(b, a.RPCHeader)
		b = putUvarint(b, a.Term)
		b = putBytes(b, a.Candidate)
		b = putUvarint(b, a.LastLogIndex)
		b = putUvarint(b, a.LastLogTerm)
		b = putFlags(b, a.LeadershipTransfer)
	case *raft.RequestPreVoteRequest:
		b = putHeader(b, a.RPCHeader)
		b = putUvarint(b, a.Term)
		b = putUvarint(b, a.LastLogIndex)
		b = putUvarint(b, a.LastLogTerm)
	case *raft.TimeoutNowRequest:
		b = putHeader(b, a.RPCHeader)
	default:
		return b, fmt.Errorf("raftmux: cannot encode request %T", args)
	}
	return b, nil
}

// decodeRequest decodes the body of a request of type rpc.
func decodeRequest(rpc rpcType, body []byte) (any, error) {
	d := decoder{b: body}
	var out any
	switch rpc {
	case rpcAppendEntries:
		r := &raft.AppendEntriesRequest{
			RPCHeader:         d.header(),
			Term:              d.uvarint(),
			Leader:            d.bytes(),
			PrevLogEntry:      d.uvarint(),
			PrevLogTerm:       d.uvarint(),
			LeaderCommitIndex: d.uvarint(),
		}
		n := d.uvarint()
		// Each entry takes at least 6 bytes, which bounds the allocation.
		if d.err == nil && n > uint64(len(d.b))/6 {
			d.fail("entry count past the end")
		}
		if d.err == nil && n > 0 {
			logs := make([]raft.Log, n)
			r.Entries = make([]*raft.Log, n)
			for i := range logs {
				e := &logs[i]
				e.Index = d.uvarint()
				e.Term = d.uvarint()
				e.Type = raft.LogType(d.flags())
				e.Data = d.bytes()
				e.Extensions = d.bytes()
				at, k := binary.Varint(d.b)
				if d.err == nil && k <= 0 {
					d.fail("bad entry time")
				} else if d.err == nil {
					d.b = d.b[k:]
					if at != 0 {
						e.AppendedAt = time.Unix(0, at)
					}
				}
				r.Entries[i] = e
			}
		}
		out = r
	case rpcRequestVote:
		r := &raft.RequestVoteRequest{
			RPCHeader:    d.header(),
			Term:         d.uvarint(),
			Candidate:    d.bytes(),
			LastLogIndex: d.uvarint(),
			LastLogTerm:  d.uvarint(),
		}
		r.LeadershipTransfer = d.flags()&1 != 0
		out = r
	case rpcRequestPreVote:
		out = &raft.RequestPreVoteRequest{
			RPCHeader:    d.header(),
			Term:         d.uvarint(),
			LastLogIndex: d.uvarint(),
			LastLogTerm:  d.uvarint(),
		}
	case rpcTimeoutNow:
		out = &raft.TimeoutNowRequest{RPCHeader: d.header()}
	default:
		return nil, fmt.Errorf("%w: request type %d", errMalformed, rpc)
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("%s: %w", rpc, err)
	}
	return out, nil
}

// answers returns the RPC type whose answer resp is.
func answers(resp any) (rpcType, bool) {
	switch resp.(type) {
	case *raft.AppendEntriesResponse:
		return rpcAppendEntries, true
	case *raft.RequestVoteResponse:
		return rpcRequestVote, true
	case *raft.RequestPreVoteResponse:
		return rpcRequestPreVote, true
	case *raft.TimeoutNowResponse:
		return rpcTimeoutNow, true
	}
	return 0, false
}

// encodeResponse appends the body of a response, which must match rpc.
func encodeResponse(b []byte, rpc rpcType, resp any) ([]byte, error) {
	if t, ok := answers(resp); !ok || t != rpc {
		return b, fmt.Errorf("raftmux: response %T does not answer %s", resp, rpc)
	}
	switch r := resp.(type) {
	case *raft.AppendEntriesResponse:
		b = putHeader(b, r.RPCHeader)
		b = putUvarint(b, r.Term)
		b = putUvarint(b, r.LastLog)
		b = putFlags(b, r.Success, r.NoRetryBackoff)
	case *raft.RequestVoteResponse:
		b = putHeader(b, r.RPCHeader)
		b = putUvarint(b, r.Term)
		b = putBytes(b, r.Peers)
		b = putFlags(b, r.Granted)
	case *raft.RequestPreVoteResponse:
		b = putHeader(b, r.RPCHeader)
		b = putUvarint(b, r.Term)
		b = putFlags(b, r.Granted)
	case *raft.TimeoutNowResponse:
		b = putHeader(b, r.RPCHeader)
	}
	return b, nil
}

// decodeResponse decodes the body of a response into resp, which must be
// the pointer the caller passed for rpc.
func decodeResponse(rpc rpcType, body []byte, resp any) error {
	t, ok := answers(resp)
	if !ok {
		return fmt.Errorf("raftmux: cannot decode into %T", resp)
	}
	if t != rpc {
		return fmt.Errorf("%w: %s response for %s", errMalformed, rpc, t)
	}
	d := decoder{b: body}
	switch r := resp.(type) {
	case *raft.AppendEntriesResponse:
		r.RPCHeader = d.header()
		r.Term = d.uvarint()
		r.LastLog = d.uvarint()
		f := d.flags()
		r.Success, r.NoRetryBackoff = f&1 != 0, f&2 != 0
	case *raft.RequestVoteResponse:
		r.RPCHeader = d.header()
		r.Term = d.uvarint()
		r.Peers = d.bytes()
		r.Granted = d.flags()&1 != 0
	case *raft.RequestPreVoteResponse:
		r.RPCHeader = d.header()
		r.Term = d.uvarint()
		r.Granted = d.flags()&1 != 0
	case *raft.TimeoutNowResponse:
		r.RPCHeader = d.header()
	}
	return d.done()
}

// isHeartbeat reports whether req is a leader's heartbeat, which raft lets
// the transport serve on its fast path (the same test as NetworkTransport's).
func isHeartbeat(req *raft.AppendEntriesRequest) bool {
	leader := req.Addr
	if len(leader) == 0 {
		leader = req.Leader
	}
	return req.Term != 0 && leader != nil && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
		len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}
