package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clover-kv/clover/raftfsm"
)

// Proposal batching: concurrent commands for one shard are packed into one
// Raft entry (up to maxEntryCommands or maxEntryBytes). Two commands that
// write the same key never share an entry (the state machine would refuse the
// second to keep a key's version equal to the Raft index of its last write),
// so a colliding command waits for the next entry.
const (
	maxEntryCommands = 512
	maxEntryBytes    = 4 << 20
	proposalQueue    = 4096
	entriesInFlight  = 1
)

// tailDelay is how long a leader's proposer waits, idle after an entry of
// commands, before it proposes an empty tail entry. Followers learn that an
// entry committed only from the leader's next append; without more writes
// that is the commit timeout's empty append, up to two commit timeouts
// later. The tail's append carries the commit index at once, so followers
// apply a burst's last writes within about tailDelay and the commit timeout
// can stay long, which is most of what an idle group costs. The tail changes
// no data, so a follower need not learn that it committed to serve reads
// (appliedNotifier.readIndexFor).
const tailDelay = 20 * time.Millisecond

type proposal struct {
	cmd   raftfsm.Command
	size  int
	done  chan proposalResult
	taken atomic.Bool // the loop took it into an entry
}

type proposalResult struct {
	res raftfsm.Result
	err error
}

type proposer struct {
	r  *replica
	ch chan *proposal
	// slots bounds the entries in flight (proposed, not yet applied).
	slots chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newProposer(r *replica) *proposer {
	p := &proposer{r: r, ch: make(chan *proposal, proposalQueue), slots: make(chan struct{}, entriesInFlight), quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *proposer) stop() {
	close(p.quit)
	<-p.done
}

// propose replicates cmd and returns its result. An error wrapping
// ErrNotLeader means the command was certainly not applied; ErrUnavailable
// means the outcome is unknown.
func (p *proposer) propose(ctx context.Context, cmd raftfsm.Command) (raftfsm.Result, error) {
	if !p.r.isLeader() {
		return raftfsm.Result{}, notLeaderError(p.r.id, p.r.leaderHintAddr())
	}
	if err := p.r.node.diskRefusal(); err != nil {
		return raftfsm.Result{}, err
	}
	pr := &proposal{cmd: cmd, size: commandSize(cmd), done: make(chan proposalResult, 1)}
	inFlight := &p.r.node.writesInFlight
	inFlight.Add(1)
	defer inFlight.Add(-1)
	select {
	case p.ch <- pr:
	case <-ctx.Done():
		return raftfsm.Result{}, ctx.Err()
	case <-p.quit:
		return raftfsm.Result{}, unavailablef("shard %d is closing", p.r.id)
	}
	select {
	case out := <-pr.done:
		return out.res, out.err
	case <-ctx.Done():
		return raftfsm.Result{}, ctx.Err()
	case <-p.done:
		// The loop stopped. A proposal it took gets its outcome from raft;
		// one it never took was never applied.
		if pr.taken.Load() {
			select {
			case out := <-pr.done:
				return out.res, out.err
			case <-ctx.Done():
				return raftfsm.Result{}, ctx.Err()
			}
		}
		return raftfsm.Result{}, notLeaderError(p.r.id, "")
	}
}

// quiesce waits until no entry of this proposer is in flight and keeps it
// so: commands queue instead of entering the log, until release is called.
// A leadership transfer runs in between, so that no entry is caught in it
// (its commands would get an unknown outcome); the queued commands then meet
// a follower and are refused as not leader, certainly not applied.
func (p *proposer) quiesce(ctx context.Context) (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.quit:
		return nil, unavailablef("shard %d is closing", p.r.id)
	}
}

func commandSize(cmd raftfsm.Command) int {
	n := 0
	for _, op := range cmd.Ops {
		n += len(op.Key) + len(op.Value) + 16
	}
	return n
}

func (p *proposer) loop() {
	defer close(p.done)
	var carry []*proposal
	var buf []byte
	tail := time.NewTimer(time.Hour)
	tail.Stop()
	defer tail.Stop()
	// needTail: an entry of commands was proposed and no entry since.
	needTail := false
	for {
		if len(carry) == 0 {
			var tailC <-chan time.Time
			if needTail {
				tail.Reset(tailDelay)
				tailC = tail.C
			}
			select {
			case pr := <-p.ch:
				carry = append(carry, pr)
			case <-tailC:
				pr, ok := p.proposeTail()
				if !ok {
					return
				}
				if pr == nil {
					needTail = false
					continue
				}
				carry = append(carry, pr)
			case <-p.quit:
				p.failQueued()
				return
			}
			tail.Stop()
		}
		// Wait for an entry slot: while entries are in flight, proposals
		// accumulate and the next entry carries them all.
		select {
		case p.slots <- struct{}{}:
		case <-p.quit:
			for _, pr := range carry {
				pr.done <- proposalResult{err: unavailablef("shard %d is closing", p.r.id)}
			}
			p.failQueued()
			return
		}
		batch, rest := p.collect(carry)
		carry = rest
		cmds := make([]raftfsm.Command, len(batch))
		for i, pr := range batch {
			pr.taken.Store(true)
			cmds[i] = pr.cmd
		}
		buf = raftfsm.EncodeEntry(buf[:0], cmds)
		data := make([]byte, len(buf))
		copy(data, buf)
		fut := p.r.raft.Apply(data, p.r.node.cfg.Raft.ApplyTimeout)
		needTail = true
		go func() {
			p.finish(fut, batch)
			<-p.slots
		}()
	}
}

// proposeTail proposes the empty tail entry once the entry before it has
// left its slot. A command that arrives first is returned instead: its own
// entry carries the commit index. ok is false when the proposer is stopping.
func (p *proposer) proposeTail() (pr *proposal, ok bool) {
	select {
	case p.slots <- struct{}{}:
	case pr := <-p.ch:
		return pr, true
	case <-p.quit:
		p.failQueued()
		return nil, false
	}
	if !p.r.isLeader() {
		<-p.slots
		return nil, true
	}
	fut := p.r.raft.Apply(emptyEntry, p.r.node.cfg.Raft.ApplyTimeout)
	go func() {
		_ = fut.Error() // the tail changes nothing: an error loses no write
		<-p.slots
	}()
	return nil, true
}

// collect builds one entry's worth of proposals from carry and the queue.
// Proposals that collide on a key with one already in the entry are returned
// in rest for the next entry.
func (p *proposer) collect(carry []*proposal) (batch, rest []*proposal) {
	written := make(map[string]struct{})
	size := 0
	add := func(pr *proposal) bool {
		if len(batch) >= maxEntryCommands || (len(batch) > 0 && size+pr.size > maxEntryBytes) {
			return false
		}
		for _, op := range pr.cmd.Ops {
			if _, dup := written[string(op.Key)]; dup {
				return false
			}
		}
		for _, op := range pr.cmd.Ops {
			written[string(op.Key)] = struct{}{}
		}
		batch = append(batch, pr)
		size += pr.size
		return true
	}
	for _, pr := range carry {
		if !add(pr) {
			rest = append(rest, pr)
		}
	}
	for len(rest) == 0 {
		select {
		case pr := <-p.ch:
			if !add(pr) {
				rest = append(rest, pr)
			}
		default:
			return batch, rest
		}
	}
	return batch, rest
}

func (p *proposer) finish(fut raft.ApplyFuture, batch []*proposal) {
	err := fut.Error()
	if err != nil {
		mapped := p.mapApplyError(err)
		for _, pr := range batch {
			pr.done <- proposalResult{err: mapped}
		}
		return
	}
	results := raftfsm.EntryResults(fut.Response(), len(batch))
	for i, pr := range batch {
		pr.done <- proposalResult{res: results[i], err: resultError(results[i])}
	}
}

func (p *proposer) mapApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// The entry never entered the log: certainly not applied.
		return notLeaderError(p.r.id, p.r.leaderHintAddr())
	case errors.Is(err, raft.ErrRaftShutdown):
		return unavailablef("shard %d is shutting down; outcome unknown", p.r.id)
	default:
		return unavailablef("shard %d: outcome unknown: %v", p.r.id, err)
	}
}

func (p *proposer) failQueued() {
	for {
		select {
		case pr := <-p.ch:
			pr.done <- proposalResult{err: unavailablef("shard %d is closing", p.r.id)}
		default:
			return
		}
	}
}

// resultError maps a state machine result to a domain error.
func resultError(res raftfsm.Result) error {
	if res.Err == nil {
		return nil
	}
	var mm *raftfsm.MismatchError
	switch {
	case errors.As(res.Err, &mm):
		return mismatchError(mm.Current)
	case errors.Is(res.Err, raftfsm.ErrVersionMismatch):
		return mismatchError(0)
	case errors.Is(res.Err, raftfsm.ErrConflict):
		return ErrConflict
	default:
		return unavailablef("apply: %v", res.Err)
	}
}

// proposeAll replicates cmds, which the proposer packs as it packs
// concurrent proposals, and returns the first error. Used for audit
// entries, whose commands write no keys and so share entries freely.
func (p *proposer) proposeAll(ctx context.Context, cmds []raftfsm.Command) error {
	if len(cmds) == 1 {
		res, err := p.propose(ctx, cmds[0])
		if err == nil {
			err = resultError(res)
		}
		return err
	}
	errs := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() {
			res, err := p.propose(ctx, c)
			if err == nil {
				err = resultError(res)
			}
			errs <- err
		}()
	}
	var first error
	for range cmds {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
