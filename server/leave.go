package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// errNoHandoverTarget: no other voter of the group may lead it now.
var errNoHandoverTarget = errors.New("no other live voter the policy permits")

// leave is the first part of Close on a started node: it tells its peers
// through gossip that it is leaving, then hands over every leadership it
// holds (see handOverLeaderships). Its Raft groups, listeners and gossip
// still run; Close stops them next.
func (s *Server) leave() {
	if s.gossip == nil {
		return
	}
	s.gossip.announceLeaving()
	if s.cfg.HandoverTimeout > 0 {
		s.handOverLeaderships(s.cfg.HandoverTimeout)
	}
}

// handOverLeaderships moves the leadership of every group this node leads,
// the meta group included, to another voter the shard's policy permits,
// all groups at once, and waits for them at most timeout. A group whose
// hand-over fails or runs out of time keeps its leader until Close stops
// it; its followers then elect one.
func (s *Server) handOverLeaderships(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	led, leads := s.leaderships()
	var wg sync.WaitGroup
	for _, r := range led {
		target, err := s.handoverTarget(r, leads)
		if errors.Is(err, errNoHandoverTarget) {
			// Every other voter is down or leaving too (a whole cluster
			// stopping): there is no one to hand over to.
			r.logger.Info("leaving: no voter to hand the leadership to", "err", err)
			continue
		}
		if err != nil {
			r.logger.Warn("leaving: no leadership hand-over; the shard elects a leader once this node stops", "err", err)
			continue
		}
		if r.id != metaShardID {
			leads[string(target.ID)]++
		}
		wg.Go(func() {
			err := r.transferLeadership(ctx, func() raft.Future {
				return r.raft.LeadershipTransferToServer(target.ID, target.Address)
			})
			switch {
			case err == nil:
				r.logger.Info("leaving: leadership handed over", "to", target.ID)
			case errors.Is(err, raft.ErrNotLeader):
			default:
				r.logger.Warn("leaving: leadership hand-over failed; the shard elects a leader once this node stops",
					"to", target.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// leaderships lists the running replicas this node leads (by shard ID)
// and counts, over the other user-shard replicas it holds, how many each
// node leads.
func (s *Server) leaderships() (led []*replica, leads map[string]int) {
	all := []*replica{}
	if s.meta != nil {
		all = append(all, s.meta)
	}
	s.mu.RLock()
	for _, r := range s.replicas {
		all = append(all, r)
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *replica) int { return cmp.Compare(a.id, b.id) })
	leads = map[string]int{}
	for _, r := range all {
		if r.isLeader() {
			led = append(led, r)
		} else if id := r.leaderID(); id != "" && r.id != metaShardID {
			leads[id]++ // user shards only, as the placement controller counts them
		}
	}
	return led, leads
}

// handoverTarget picks who takes over r's leadership: a voter of the group
// other than this node, recorded live, not leaving, and permitted by the
// shard's policy; of those, the one whose region comes earliest in the
// policy's leader preference, then the one leading the fewest shards
// (leads), then the smallest node ID, as the placement controller would.
func (s *Server) handoverTarget(r *replica, leads map[string]int) (raft.Server, error) {
	fut := r.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return raft.Server{}, fmt.Errorf("read configuration: %w", err)
	}
	c := s.catalog()
	var prefs []string
	if ref, ok := c.shards[r.id]; ok {
		prefs = ref.ks.Policy.LeaderPreference
	}
	rank := func(id raft.ServerID) int {
		i := slices.Index(prefs, c.nodes[string(id)].Locality.Region)
		if i < 0 {
			return len(prefs)
		}
		return i
	}
	better := func(a, b raft.ServerID) bool {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if la, lb := leads[string(a)], leads[string(b)]; la != lb {
			return la < lb
		}
		return a < b
	}
	var best *raft.Server
	for _, srv := range fut.Configuration().Servers {
		id := string(srv.ID)
		n, ok := c.nodes[id]
		if srv.Suffrage != raft.Voter || id == s.cfg.NodeID || !ok || !n.Live ||
			s.departures.leaving(id) || s.permitShardOnNode(r.id, id) != nil {
			continue
		}
		if best == nil || better(srv.ID, best.ID) {
			best = &srv
		}
	}
	if best == nil {
		return raft.Server{}, errNoHandoverTarget
	}
	return *best, nil
}
