package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/audit"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// The audit log. Every Raft group keeps an audit stream in its state
// machine (raftfsm): a Merkle tree log of entries, and a salt its first
// leader draws. A shard's stream records the requests of its keyspace,
// when the keyspace's policy audits them; the meta group's stream (the
// admin stream) records admin acts. A stream lives where its group lives,
// so the access log of an EEA keyspace is only on nodes the keyspace may
// live on. Keys appear only as HMACs under the shard's salt.
//
//   - A write's entry rides in the write's own command: the write and its
//     record commit in one Raft entry, or neither does.
//   - A linearizable read on the leader proposes its entry and reads once
//     it has applied: the commit, in the leader's term, confirms the
//     leadership the read needs, so it takes the place of the read index.
//   - A follower read serves once its entry is committed on the leader
//     (Internal.AuditAppend, batched per shard).
//   - A refused request's entry is sent to the shard leader in the
//     background; one that cannot be sent is counted (audit_dropped).
//
// A request whose entry does not commit within AuditTimeout fails with
// Unavailable, rule "audit", and nothing of it is returned: other
// keyspaces' requests are not held up by it.

// Audit modes of a keyspace policy.
const (
	auditAll    = "all"
	auditWrites = "writes"
	auditNone   = "none"
)

// Result values of an entry.
const (
	auditAllowed = "allowed"
	auditRefused = "refused"
)

// ruleAudit names the audit in the error of a request that failed because
// its entry could not be committed.
const ruleAudit = "audit"

// Bounds of the background queue of refusal entries and of one batch.
const (
	maxAuditQueue = 8192
	maxAuditBatch = 512
)

// validAuditMode checks a policy's audit field.
func validAuditMode(m string) error {
	switch m {
	case "", auditAll, auditWrites, auditNone:
		return nil
	}
	return invalidf("policy: audit %q: want all, writes or none", clipID(m))
}

// auditMode is what k's stream records: the policy's choice, or by class
// (personal: all; public: none).
func (k *keyspaceRecord) auditMode() string {
	switch k.Audit {
	case auditAll, auditWrites, auditNone:
		return k.Audit
	}
	if k.Policy.Class == placement.ClassPublic {
		return auditNone
	}
	return auditAll
}

func (k *keyspaceRecord) auditsReads() bool { return k.auditMode() == auditAll }

func (k *keyspaceRecord) auditsWrites() bool {
	m := k.auditMode()
	return m == auditAll || m == auditWrites
}

// auditor is a node's audit machinery.
type auditor struct {
	s       *Server
	timeout time.Duration

	mu    sync.Mutex
	sinks map[uint64]*auditSink

	failures atomic.Uint64 // requests failed: entry not committed
	dropped  atomic.Uint64 // refusal entries not recorded

	// The checkpoint signer: the node's TLS key and certificate in secure
	// mode, a key of the node's own (unattested) in insecure mode.
	signer  crypto.Signer
	certDER []byte
	pubDER  []byte
}

func newAuditor(s *Server) (*auditor, error) {
	a := &auditor{s: s, timeout: s.cfg.AuditTimeout, sinks: map[uint64]*auditSink{}}
	if a.timeout <= 0 {
		a.timeout = defaultAuditTimeout
	}
	if tc := s.cfg.ServerTLS; tc != nil && len(tc.Certificates) > 0 {
		c := tc.Certificates[0]
		signer, ok := c.PrivateKey.(crypto.Signer)
		if !ok || len(c.Certificate) == 0 {
			return nil, fmt.Errorf("audit: the node's TLS key cannot sign checkpoints")
		}
		a.signer, a.certDER = signer, c.Certificate[0]
	} else {
		key, err := loadOrMakeAuditKey(filepath.Join(s.cfg.DataDir, auditKeyFile))
		if err != nil {
			return nil, err
		}
		a.signer = key
	}
	pub, err := x509.MarshalPKIXPublicKey(a.signer.Public())
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	a.pubDER = pub
	return a, nil
}

// auditKeyFile holds an insecure-mode node's checkpoint key.
const auditKeyFile = "audit-signing-key.pem"

func loadOrMakeAuditKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("audit: write %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("audit: %s holds no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: %s is not an Ed25519 key", path)
	}
	return key, nil
}

// auditUnavailable is the error of a request whose entry did not commit.
func (a *auditor) unavailable(shard uint64, err error) error {
	a.failures.Add(1)
	if errors.Is(err, ErrDiskFull) {
		a.s.logger.Warn("audit: disk full: audited requests fail until space is freed", "shard", shard)
	}
	return &apiError{
		err: fmt.Errorf("%w: audit: shard %d: the request's audit entry was not committed within %s, so the request was not served: %v",
			ErrUnavailable, shard, a.timeout, err),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_UNAVAILABLE, Rule: ruleAudit, ShardId: shard},
	}
}

// Metadata a forwarding node adds for the user it forwards for: the user's
// certificate fingerprint and network address as the node saw them.
const (
	onBehalfFPKey   = "clover-on-behalf-fp"
	onBehalfAddrKey = "clover-on-behalf-addr"
)

// entry returns an entry for a request of ctx's caller (ci, or the caller
// the gateway let in) about keyspace and shard.
func (s *Server) auditEntry(ctx context.Context, ci *callerInfo, op, keyspace string, shard uint64, nkeys int, result, rule string) *pb.AuditEntry {
	e := &pb.AuditEntry{
		TimeUnixNano: time.Now().UnixNano(), Node: s.cfg.NodeID, NodeLocality: localityToPB(s.cfg.Locality),
		Operation: op, Keyspace: keyspace, ShardId: shard, Keys: uint32(nkeys), Result: result, Rule: rule,
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		e.CallerAddr = p.Addr.String()
	}
	if ci == nil {
		if c, ok := callerOf(ctx); ok {
			ci = &c
		}
	}
	if !s.cfg.Secure() || ci == nil {
		e.Caller = "unattested"
		return e
	}
	c := ci.caller
	e.CallerFingerprint = ci.fingerprint
	if c.Kind == access.Node && c.OnBehalfOf != nil {
		e.ViaNode = c.Name
		c = *c.OnBehalfOf
		e.CallerFingerprint, e.CallerAddr = "", ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(onBehalfFPKey); len(v) == 1 && isHexFingerprint(v[0]) {
				e.CallerFingerprint = v[0]
			}
			if v := md.Get(onBehalfAddrKey); len(v) == 1 && len(v[0]) <= 64 {
				e.CallerAddr = v[0]
			}
		}
	}
	e.Caller = c.Kind.String() + ":" + c.Name
	e.CallerCountry = c.Country
	for _, r := range c.Roles {
		e.CallerRoles = append(e.CallerRoles, string(r))
	}
	return e
}

func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func isHexFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// leaf completes e with the HMACs of keys under r's salt and encodes it.
func (a *auditor) leaf(ctx context.Context, r *replica, e *pb.AuditEntry, keys [][]byte) ([]byte, error) {
	salt, err := a.salt(ctx, r)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if len(k) == 0 {
			continue
		}
		h, err := audit.KeyHMAC(salt, k)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			e.KeyHmac = h
		} else {
			e.MoreKeyHmacs = append(e.MoreKeyHmacs, h)
		}
	}
	return audit.EncodeEntry(e)
}

// salt returns r's audit salt, having its leader draw it first if the
// group has none yet (a new leader's barrier carries it).
func (a *auditor) salt(ctx context.Context, r *replica) ([]byte, error) {
	if salt := r.fsm.AuditSalt(); salt != nil {
		return salt, nil
	}
	if !r.isLeader() {
		return nil, notLeaderError(r.id, r.leaderHintAddr())
	}
	if err := r.proposeSalt(ctx); err != nil {
		return nil, err
	}
	if salt := r.fsm.AuditSalt(); salt != nil {
		return salt, nil
	}
	return nil, unavailablef("shard %d: no audit salt", r.id)
}

// newSalt draws a salt.
func newSalt() []byte {
	b := make([]byte, audit.SaltSize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return b
}

// proposeSalt commits a salt for r's stream (ignored by the state machine
// if one is set already).
func (r *replica) proposeSalt(ctx context.Context) error {
	_, err := r.prop.propose(ctx, raftfsm.Command{AuditSalt: newSalt()})
	return err
}

// writeLeaf returns the audit leaf of a write of keys on r, the leader,
// or nil when ks does not audit writes.
func (a *auditor) writeLeaf(ctx context.Context, ks *keyspaceRecord, r *replica, op string, keys [][]byte) ([]byte, error) {
	if ks == nil || !ks.auditsWrites() {
		return nil, nil
	}
	e := a.s.auditEntry(ctx, nil, op, ks.Name, r.id, len(keys), auditAllowed, string(access.RuleAllowed))
	actx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	leaf, err := a.leaf(actx, r, e, keys)
	if err != nil {
		if isNotLeader(err) {
			return nil, err
		}
		return nil, a.unavailable(r.id, err)
	}
	return leaf, nil
}

// readyForRead prepares a read of shard sh of ks at the asked consistency,
// with its audit entry committed when ks audits reads. It returns nil when
// the read must be forwarded (the node that serves it records it).
func (s *Server) readyForRead(ctx context.Context, ks *keyspaceRecord, sh *shardRecord, ro *pb.ReadOptions, op string, keys [][]byte) (*replica, error) {
	if ks == nil || !ks.auditsReads() {
		return s.readable(ctx, sh, ro)
	}
	a := s.audit
	if ro.GetConsistency() != pb.Consistency_CONSISTENCY_FOLLOWER {
		r := s.replica(sh.ID)
		if r == nil || !r.isLeader() {
			return nil, nil
		}
		e := s.auditEntry(ctx, nil, op, ks.Name, sh.ID, len(keys), auditAllowed, string(access.RuleAllowed))
		e.Consistency = "linearizable"
		// Committed in this leader's term and applied here: every write
		// acknowledged before the read began is applied too.
		err := a.commitLocal(ctx, r, []*pb.AuditEntry{e}, [][][]byte{keys})
		if isNotLeader(err) {
			return nil, nil
		}
		if err != nil {
			return nil, a.unavailable(sh.ID, err)
		}
		return r, nil
	}
	r, err := s.readable(ctx, sh, ro)
	if r == nil || err != nil {
		return r, err
	}
	e := s.auditEntry(ctx, nil, op, ks.Name, sh.ID, len(keys), auditAllowed, string(access.RuleAllowed))
	e.Consistency = "follower"
	if r.isLeader() {
		err = a.commitLocal(ctx, r, []*pb.AuditEntry{e}, [][][]byte{keys})
	} else {
		err = a.commitRemote(ctx, sh.ID, e, keys)
	}
	if err != nil {
		return nil, a.unavailable(sh.ID, err)
	}
	return r, nil
}

// commitLocal appends entries (with keys, parallel) to r's stream through
// its proposer, r being the leader, within the audit timeout.
func (a *auditor) commitLocal(ctx context.Context, r *replica, entries []*pb.AuditEntry, keys [][][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	cmds := make([]raftfsm.Command, len(entries))
	for i, e := range entries {
		var k [][]byte
		if i < len(keys) {
			k = keys[i]
		}
		leaf, err := a.leaf(ctx, r, e, k)
		if err != nil {
			return err
		}
		cmds[i] = raftfsm.Command{Audit: leaf}
	}
	return r.prop.proposeAll(ctx, cmds)
}

// commitRemote appends one entry to shard's stream on its leader, batched
// with the node's other entries for the shard, and waits for the commit.
func (a *auditor) commitRemote(ctx context.Context, shard uint64, e *pb.AuditEntry, keys [][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	p := &auditPending{e: e, done: make(chan error, 1)}
	if len(keys) > 0 {
		p.key = keys[0]
	}
	if err := a.sink(shard).add(p); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record appends e to shard's stream in the background: refusals, which
// give the caller nothing to wait for. An entry that cannot be queued or
// sent is counted in audit_dropped.
func (a *auditor) record(shard uint64, e *pb.AuditEntry, key []byte) {
	if err := a.sink(shard).add(&auditPending{e: e, key: key}); err != nil {
		a.dropped.Add(1)
	}
}

// refused records a refused request of keyspace (key nil for a scan).
func (s *Server) auditRefused(ctx context.Context, ci *callerInfo, op, keyspace string, key []byte, rule string) {
	if s.audit == nil {
		return
	}
	ks, ok := s.catalog().keyspaces[keyspace]
	if !ok || len(ks.Shards) == 0 {
		return
	}
	write := op != "get" && op != "scan"
	if (write && !ks.auditsWrites()) || (!write && !ks.auditsReads()) {
		return
	}
	sh := &ks.Shards[0]
	if len(key) > 0 {
		sh = shardOf(ks, key)
	}
	n := 0
	if len(key) > 0 {
		n = 1
	}
	e := s.auditEntry(ctx, ci, op, keyspace, sh.ID, n, auditRefused, rule)
	s.audit.record(sh.ID, e, key)
}

// auditResidency records a request refused because this node is outside
// the keyspace's residency.
func (s *Server) auditResidency(ctx context.Context, op, keyspace string, key []byte, err error) {
	if errors.Is(err, ErrResidency) {
		s.auditRefused(ctx, nil, op, keyspace, key, "residency")
	}
}

// auditAdmin records an admin act in the admin stream in the background.
func (s *Server) auditAdmin(ctx context.Context, ci *callerInfo, op, detail, result, rule string) {
	if s.audit == nil {
		return
	}
	e := s.auditEntry(ctx, ci, op, "", metaShardID, 0, result, rule)
	e.Detail = detail
	s.audit.record(metaShardID, e, nil)
}

// adminLeaf is the admin-stream leaf of an act the meta leader commits in
// the same command.
func (s *Server) adminLeaf(ctx context.Context, op, keyspace, detail string) ([]byte, error) {
	e := s.auditEntry(ctx, nil, op, keyspace, metaShardID, 0, auditAllowed, string(access.RuleAllowed))
	e.Detail = detail
	actx, cancel := context.WithTimeout(ctx, s.audit.timeout)
	defer cancel()
	leaf, err := s.audit.leaf(actx, s.meta, e, nil)
	if err != nil && !isNotLeader(err) {
		return nil, s.audit.unavailable(metaShardID, err)
	}
	return leaf, err
}

// historyLeaf is the admin-stream leaf of placement events (replica
// moves, leadership transfers, members), or nil if it cannot be made: the
// placement history records them in any case.
func (s *Server) historyLeaf(ctx context.Context, events ...historyEvent) []byte {
	if len(events) == 0 || s.audit == nil {
		return nil
	}
	details := make([]string, 0, len(events))
	for _, ev := range events {
		d := ev.Action
		if ev.Shard != 0 {
			d += fmt.Sprintf(" shard %d", ev.Shard)
		}
		if ev.Node != "" {
			d += " node " + ev.Node
		}
		details = append(details, d+": "+ev.Reason)
	}
	e := s.auditEntry(ctx, nil, events[0].Action, events[0].Keyspace, metaShardID, 0, auditAllowed, "placement")
	e.Detail = strings.Join(details, "; ")
	if e.Caller == "unattested" && s.cfg.Secure() {
		e.Caller = "node:" + s.cfg.NodeID
	}
	actx, cancel := context.WithTimeout(ctx, s.audit.timeout)
	defer cancel()
	leaf, err := s.audit.leaf(actx, s.meta, e, nil)
	if err != nil {
		return nil
	}
	return leaf
}

// auditPending is an entry waiting in a sink.
type auditPending struct {
	e    *pb.AuditEntry
	key  []byte
	done chan error // nil: nobody waits (a refusal)
}

// auditSink sends one shard's entries to its leader, one batch in flight.
type auditSink struct {
	a     *auditor
	shard uint64

	mu      sync.Mutex
	queue   []*auditPending
	sending bool
}

func (a *auditor) sink(shard uint64) *auditSink {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.sinks[shard]
	if !ok {
		k = &auditSink{a: a, shard: shard}
		a.sinks[shard] = k
	}
	return k
}

func (k *auditSink) add(p *auditPending) error {
	k.mu.Lock()
	if len(k.queue) >= maxAuditQueue {
		k.mu.Unlock()
		return unavailablef("audit: shard %d: %d entries queued", k.shard, maxAuditQueue)
	}
	k.queue = append(k.queue, p)
	start := !k.sending
	k.sending = true
	k.mu.Unlock()
	if start {
		go k.run()
	}
	return nil
}

func (k *auditSink) run() {
	for {
		k.mu.Lock()
		n := min(len(k.queue), maxAuditBatch)
		if n == 0 {
			k.sending = false
			k.mu.Unlock()
			return
		}
		batch := k.queue[:n:n]
		k.queue = k.queue[n:]
		k.mu.Unlock()
		err := k.a.send(k.shard, batch)
		for _, p := range batch {
			if p.done != nil {
				p.done <- err
			} else if err != nil {
				k.a.dropped.Add(1)
			}
		}
		if err != nil && k.a.s.ctx.Err() == nil {
			k.a.s.logger.Debug("audit: entries not recorded", "shard", k.shard, "entries", len(batch), "err", err)
		}
	}
}

// send appends a batch to shard's stream: locally if this node leads the
// group, else on the leader (Internal.AuditAppend, one hop of hints).
func (a *auditor) send(shard uint64, batch []*auditPending) error {
	ctx, cancel := context.WithTimeout(a.s.ctx, a.timeout)
	defer cancel()
	entries := make([]*pb.AuditEntry, len(batch))
	keys := make([][][]byte, len(batch))
	req := &pb.AuditAppendRequest{ShardId: shard}
	for i, p := range batch {
		entries[i] = p.e
		if p.key != nil {
			keys[i] = [][]byte{p.key}
		}
		req.Entries = append(req.Entries, p.e)
		req.Keys = append(req.Keys, p.key)
	}
	r := a.s.replicaOrMeta(shard)
	if r != nil && r.isLeader() {
		return a.commitLocal(ctx, r, entries, keys)
	}
	hint := ""
	if r != nil {
		hint = r.leaderHintAddr()
	}
	if hint == "" {
		hint = a.s.streamHint(shard)
	}
	for hop := 0; hop < 3; hop++ {
		if hint == "" || hint == a.s.selfRec.GRPC {
			return unavailablef("audit: shard %d: no leader known", shard)
		}
		if shard != metaShardID && !a.s.addrPermitted(shard, hint) {
			return unavailablef("audit: shard %d: leader hint outside the keyspace's policy", shard)
		}
		cc, err := a.s.peers.get(hint)
		if err != nil {
			return err
		}
		_, err = pb.NewInternalClient(cc).AuditAppend(ctx, req)
		d := errorDetail(err)
		if d == nil || d.Kind != pb.ErrorDetail_KIND_NOT_LEADER || d.LeaderHint == hint {
			return err
		}
		hint = d.LeaderHint
	}
	return unavailablef("audit: shard %d: leader moved", shard)
}

// replicaOrMeta returns the replica of group id on this node: the meta
// group for 0.
func (s *Server) replicaOrMeta(id uint64) *replica {
	if id == metaShardID {
		return s.meta
	}
	return s.replica(id)
}

// streamHint is the address of a node that may lead shard's group: for
// the meta group its leader, else a permitted replica.
func (s *Server) streamHint(shard uint64) string {
	if shard == metaShardID {
		addr, _ := s.metaLeaderAddr()
		return addr
	}
	c := s.catalog()
	ref, ok := c.shards[shard]
	if !ok {
		return ""
	}
	return s.leaderHint(ref.shard, nil)
}

// appendFrom serves Internal.AuditAppend on the group's leader: entries
// sent by node (its attested name in secure mode). A node outside the
// keyspace's residency may only record refusals; the entries carry the
// sending node as their node, whatever they claim.
func (s *Server) appendFrom(ctx context.Context, req *pb.AuditAppendRequest) (uint64, error) {
	r := s.replicaOrMeta(req.ShardId)
	if r == nil {
		return 0, notLeaderError(req.ShardId, s.streamHint(req.ShardId))
	}
	if !r.isLeader() {
		return 0, notLeaderError(req.ShardId, r.leaderHintAddr())
	}
	if len(req.Entries) == 0 || len(req.Entries) > maxAuditBatch {
		return 0, invalidf("audit append: %d entries: want 1..%d", len(req.Entries), maxAuditBatch)
	}
	if len(req.Keys) != 0 && len(req.Keys) != len(req.Entries) {
		return 0, invalidf("audit append: %d keys for %d entries", len(req.Keys), len(req.Entries))
	}
	c := s.catalog()
	var ks *keyspaceRecord
	if req.ShardId != metaShardID {
		ref, ok := c.shards[req.ShardId]
		if !ok {
			return 0, invalidf("audit append: shard %d is in no keyspace", req.ShardId)
		}
		ks = ref.ks
	}
	sender := ""
	if ci, ok := callerOf(ctx); ok && s.cfg.Secure() {
		sender = ci.caller.Name
	}
	keys := make([][][]byte, len(req.Entries))
	for i, e := range req.Entries {
		if e == nil {
			return 0, invalidf("audit append: entry %d is empty", i)
		}
		if sender != "" {
			e.Node = sender
			if n, ok := c.nodes[sender]; ok {
				e.NodeLocality = localityToPB(n.Locality)
			}
		}
		e.ShardId = req.ShardId
		e.KeyHmac, e.MoreKeyHmacs = nil, nil
		if ks != nil {
			e.Keyspace = ks.Name
			if sender != "" && e.Result != auditRefused {
				if n, ok := c.nodes[sender]; !ok || !ks.permits(n.Locality) {
					return 0, permissionDenied(access.Decision{Rule: access.RuleNodeNotUser,
						Reason: fmt.Sprintf("node %s is outside the residency of keyspace %q: it may record refusals only", sender, ks.Name)})
				}
			}
		}
		if len(req.Keys) > 0 && len(req.Keys[i]) > 0 {
			keys[i] = [][]byte{req.Keys[i]}
		}
	}
	if err := s.audit.commitLocal(ctx, r, req.Entries, keys); err != nil {
		return 0, err
	}
	return r.fsm.AuditSize(), nil
}
