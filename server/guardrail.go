package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clover-kv/clover/access"
	pb "github.com/clover-kv/clover/api/cloverv1"
	"github.com/clover-kv/clover/placement"
	"github.com/clover-kv/clover/raftfsm"
)

// The personal-data guardrail is the cluster-wide limit no admin request
// can cross (access.Guardrail): a personal keyspace's residency and caller
// jurisdictions stay inside its countries. The node that founds the
// cluster (Config.Bootstrap) records it in the meta group once, under
// metaGuard, resolved with that node's catalogue, whether or not its
// Config.PersonalDataJurisdiction sets one; from then on it never changes.
// A node whose own setting disagrees with the record logs a warning and
// the record applies.

// guardRecord is the recorded guardrail.
type guardRecord struct {
	// Jurisdiction is what the founding node was given, canonical (upper
	// case, e.g. "EEA" or "IE,NO"); empty: no guardrail.
	Jurisdiction string   `json:"jurisdiction"`
	Countries    []string `json:"countries,omitempty"`
	Node         string   `json:"node"`
	UnixMs       int64    `json:"unix_ms"`
}

// guardrail is the record as access.Guardrail; the zero Guardrail when
// nothing is recorded.
func (g *guardRecord) guardrail() access.Guardrail {
	if g == nil {
		return access.Guardrail{}
	}
	return access.Guardrail{Name: g.Jurisdiction, Countries: g.Countries}
}

// PersonalDataGuardrail resolves PersonalDataJurisdiction (a jurisdiction
// of the node's catalogue, ISO 3166-1 alpha-2 codes, or both,
// comma-separated, in any case) to a Guardrail; the zero Guardrail when it
// is empty. ANY is refused: a guardrail of every country limits nothing.
func (c Config) PersonalDataGuardrail() (access.Guardrail, error) {
	if strings.TrimSpace(c.PersonalDataJurisdiction) == "" {
		return access.Guardrail{}, nil
	}
	cat, err := c.catalogue()
	if err != nil {
		return access.Guardrail{}, err
	}
	js, cs, err := cat.ParseResidency(c.PersonalDataJurisdiction)
	if err != nil {
		return access.Guardrail{}, err
	}
	if len(js)+len(cs) == 0 {
		return access.Guardrail{}, errors.New("ANY limits nothing: name a jurisdiction or countries, or leave it unset")
	}
	countries, _ := cat.PermittedCountries(placement.Policy{AllowJurisdictions: js, AllowCountries: cs})
	return access.Guardrail{Name: strings.Join(append(js, cs...), ","), Countries: countries}, nil
}

// foundingGuardRecord is the record this node writes when it founded the
// cluster and the catalogue holds none; ok is false on any other node.
func (s *Server) foundingGuardRecord() (rec guardRecord, ok bool) {
	if !s.cfg.Bootstrap {
		return guardRecord{}, false
	}
	g, _ := s.cfg.PersonalDataGuardrail() // Validate checked it
	return guardRecord{Jurisdiction: g.Name, Countries: g.Countries, Node: s.cfg.NodeID, UnixMs: time.Now().UnixMilli()}, true
}

// guardrailFor returns the guardrail a keyspace change proposed on
// catalogue c is checked against, and the ops to propose with the change:
// when c records no guardrail yet and this node founded the cluster, the
// change records this node's in the same command (conditional on there
// being none), so that no keyspace is ever committed under a guardrail
// other than the recorded one.
func (s *Server) guardrailFor(c *catalog) (access.Guardrail, []raftfsm.Op) {
	if c.guard != nil {
		return c.guard.guardrail(), nil
	}
	rec, ok := s.foundingGuardRecord()
	if !ok {
		return access.Guardrail{}, nil
	}
	return rec.guardrail(), []raftfsm.Op{guardRecordOp(rec)}
}

func guardRecordOp(rec guardRecord) raftfsm.Op {
	return raftfsm.Op{Kind: raftfsm.OpPut, Key: []byte(metaGuard), Value: mustJSON(rec), HasCond: true, CondVersion: 0}
}

// checkGuardrail checks keyspace next against guardrail g (wasPersonal: the
// keyspace had class personal before the change) and returns a permission
// error naming the rule and the keyspace.
func checkGuardrail(g access.Guardrail, next *keyspaceRecord, wasPersonal bool) error {
	err := g.Check(next.accessKeyspace(), wasPersonal)
	if err == nil {
		return nil
	}
	return &apiError{
		err:    fmt.Errorf("%w: %w", ErrPermissionDenied, err),
		detail: &pb.ErrorDetail{Kind: pb.ErrorDetail_KIND_PERMISSION_DENIED, Rule: string(access.RuleGuardrail)},
	}
}

// guardrailPoll is how often guardrailLoop looks at the catalogue until
// the guardrail is recorded.
const guardrailPoll = 250 * time.Millisecond

// guardrailLoop records the founding node's guardrail once it leads the
// meta group, and on every node, once the catalogue holds the record,
// warns if the node's own setting disagrees with it. It ends there.
func (s *Server) guardrailLoop(ctx context.Context) {
	tick := time.NewTicker(guardrailPoll)
	defer tick.Stop()
	for {
		c := s.catalog()
		if c.guard != nil {
			s.warnGuardrailMismatch(c.guard)
			return
		}
		if rec, ok := s.foundingGuardRecord(); ok && s.meta.isLeader() {
			if _, err := s.metaPropose(ctx, raftfsm.Command{Ops: []raftfsm.Op{guardRecordOp(rec)}}); err != nil && !isMismatch(err) && ctx.Err() == nil {
				s.logger.Warn("personal-data guardrail not recorded yet; retrying", "err", err)
			} else if err == nil {
				s.logger.Info("personal-data guardrail recorded", "jurisdiction", orNoneSet(rec.Jurisdiction), "countries", len(rec.Countries))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// warnGuardrailMismatch logs a warning when this node was given a
// guardrail other than the recorded one.
func (s *Server) warnGuardrailMismatch(rec *guardRecord) {
	if strings.TrimSpace(s.cfg.PersonalDataJurisdiction) == "" {
		return
	}
	mine, _ := s.cfg.PersonalDataGuardrail()
	if slices.Equal(mine.Countries, rec.Countries) {
		return
	}
	s.logger.Warn("personal-data-jurisdiction differs from the guardrail recorded when the cluster was founded; the recorded one applies and never changes",
		"given", mine.Name, "recorded", orNoneSet(rec.Jurisdiction), "recorded_by", rec.Node)
}

func orNoneSet(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
