package placement

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// String returns the kind as Table shows it, e.g. "add-non-voter".
func (k ActionKind) String() string {
	switch k {
	case AddNonVoter:
		return "add-non-voter"
	case PromoteVoter:
		return "promote-voter"
	case RemoveReplica:
		return "remove-replica"
	case TransferLeader:
		return "transfer-leader"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// String returns the status as Table shows it, e.g. "under-replicated".
func (s ShardStatus) String() string {
	switch s {
	case Conforming:
		return "conforming"
	case Moving:
		return "moving"
	case UnderReplicated:
		return "under-replicated"
	case Blocked:
		return "blocked"
	}
	return fmt.Sprintf("ShardStatus(%d)", int(s))
}

// String returns the action on one line, e.g.
// "transfer-leader shard 7 (users) to ie-1: leader us-1 (US) is outside ...".
func (a Action) String() string {
	prep := "on"
	if a.Kind == TransferLeader {
		prep = "to"
	}
	return fmt.Sprintf("%s shard %d (%s) %s %s: %s", a.Kind, a.Shard, a.Keyspace, prep, a.Node, a.Reason)
}

// Table returns the plan as fixed-width text: a table of the actions (kind,
// shard, keyspace, node, reason) or "no actions", then a table of the shards
// that have problems with their status and problems (one line each), then a
// line counting the shards by status. The output is deterministic.
func (p Plan) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(p.Actions) == 0 {
		fmt.Fprintln(w, "no actions")
	} else {
		fmt.Fprintln(w, "ACTION\tSHARD\tKEYSPACE\tNODE\tREASON")
		for _, a := range p.Actions {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", a.Kind, a.Shard, a.Keyspace, a.Node, a.Reason)
		}
	}
	w.Flush()

	var counts [Blocked + 1]int
	header := false
	for _, s := range p.Shards {
		if s.Status >= Conforming && s.Status <= Blocked {
			counts[s.Status]++
		}
		if len(s.Problems) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "SHARD\tKEYSPACE\tSTATUS\tPROBLEMS")
			header = true
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", s.Shard, s.Keyspace, s.Status, s.Problems[0])
		for _, pr := range s.Problems[1:] {
			fmt.Fprintf(w, "\t\t\t%s\n", pr)
		}
	}
	w.Flush()

	if len(p.Shards) == 0 {
		b.WriteString("no shards\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%d shards:", len(p.Shards))
	sep := " "
	for st, n := range counts {
		if n > 0 {
			fmt.Fprintf(&b, "%s%d %s", sep, n, ShardStatus(st))
			sep = ", "
		}
	}
	b.WriteString("\n")
	return b.String()
}
