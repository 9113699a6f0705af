package audit

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// Incident kinds (AuditIncident.kind).
const (
	incidentRefused         = "refused"
	incidentNewJurisdiction = "new-jurisdiction"
	incidentVolume          = "volume"
)

// Entry results (AuditEntry.result).
const (
	resultAllowed = "allowed"
	resultRefused = "refused"
)

// adminOperations are the operations of administration (AuditEntry.operation);
// their entries count for no keyspace's jurisdictions or volume.
var adminOperations = map[string]bool{
	"create-keyspace": true, "drop-keyspace": true, "set-policy": true,
	"node-join": true, "node-leave": true, "replica-add": true, "replica-remove": true,
	"leader-transfer": true, "identity-refused": true,
}

// IncidentOptions tunes Incidents. The zero value works: each field's
// zero (or a negative value) means its default.
type IncidentOptions struct {
	// VolumeWindow is the length of the fixed windows, aligned to
	// multiples of it since the Unix epoch, in which a caller's requests
	// to a keyspace are counted. Default 1 minute.
	VolumeWindow time.Duration
	// VolumeThreshold is how many allowed requests a caller may make to
	// one keyspace in one window before a volume incident is raised.
	// Default 1000.
	VolumeThreshold int
}

// withDefaults returns o with its defaults filled in.
func (o IncidentOptions) withDefaults() IncidentOptions {
	if o.VolumeWindow <= 0 {
		o.VolumeWindow = time.Minute
	}
	if o.VolumeThreshold <= 0 {
		o.VolumeThreshold = 1000
	}
	return o
}

// Incidents finds the incidents among records of one or more streams. It
// is a pure function of the records, so an auditor recomputes from an
// export what a node reported. The records are taken in order of entry
// time, then stream, then index (Incidents sorts a copy); a record whose
// Entry is nil is decoded from its leaf, and one whose leaf does not
// decode is skipped (CheckStream reports it).
//
// It raises, each with the raising record's stream, shard, index, node,
// time, keyspace and caller:
//
//   - refused: every entry whose result is "refused", with its rule,
//     operation and detail;
//   - new-jurisdiction: an allowed data entry from a caller country not
//     seen before for its keyspace. The first country seen for a keyspace
//     is its baseline, not an incident; entries without a country are not
//     counted;
//   - volume: once per caller, keyspace and window, when the caller's
//     allowed data entries in the window exceed opts.VolumeThreshold.
//
// Entries of administration (an empty keyspace, the admin stream, or an
// admin operation) count for neither of the last two.
func Incidents(recs []*cloverv1.AuditRecord, opts IncidentOptions) []*cloverv1.AuditIncident {
	opts = opts.withDefaults()
	type item struct {
		r *cloverv1.AuditRecord
		e *cloverv1.AuditEntry
	}
	items := make([]item, 0, len(recs))
	for _, r := range recs {
		if r == nil {
			continue
		}
		e := r.Entry
		if e == nil {
			var err error
			if e, err = DecodeEntry(r.Leaf); err != nil {
				continue
			}
		}
		items = append(items, item{r, e})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.e.TimeUnixNano, b.e.TimeUnixNano),
			cmp.Compare(a.r.Stream, b.r.Stream), cmp.Compare(a.r.Index, b.r.Index))
	})

	type volumeKey struct {
		caller, keyspace string
		window           int64
	}
	countries := map[string]map[string]bool{} // keyspace -> countries seen
	baseline := map[string]string{}           // keyspace -> first country
	volume := map[volumeKey]int{}
	var out []*cloverv1.AuditIncident
	for _, it := range items {
		e := it.e
		if e.Result == resultRefused {
			in := incident(incidentRefused, it.r, e)
			in.Rule, in.Operation, in.Detail = e.Rule, e.Operation, e.Detail
			out = append(out, in)
			continue
		}
		if e.Result != resultAllowed || e.Keyspace == "" || it.r.Stream == adminStream || adminOperations[e.Operation] {
			continue
		}
		if c := e.CallerCountry; c != "" {
			seen := countries[e.Keyspace]
			switch {
			case seen == nil:
				countries[e.Keyspace] = map[string]bool{c: true}
				baseline[e.Keyspace] = c
			case !seen[c]:
				seen[c] = true
				in := incident(incidentNewJurisdiction, it.r, e)
				in.Operation = e.Operation
				in.Detail = fmt.Sprintf("first request to the keyspace from %s (first seen from %s)", c, baseline[e.Keyspace])
				out = append(out, in)
			}
		}
		k := volumeKey{e.Caller, e.Keyspace, windowStart(e.TimeUnixNano, opts.VolumeWindow)}
		volume[k]++
		if volume[k] == opts.VolumeThreshold+1 {
			in := incident(incidentVolume, it.r, e)
			in.Detail = fmt.Sprintf("more than %d requests in the %v from %s",
				opts.VolumeThreshold, opts.VolumeWindow, time.Unix(0, k.window).UTC().Format(time.RFC3339Nano))
			out = append(out, in)
		}
	}
	return out
}

// incident is an incident of kind raised by record r with entry e.
func incident(kind string, r *cloverv1.AuditRecord, e *cloverv1.AuditEntry) *cloverv1.AuditIncident {
	return &cloverv1.AuditIncident{
		TimeUnixNano: e.TimeUnixNano, Kind: kind, Keyspace: e.Keyspace,
		Caller: e.Caller, CallerCountry: e.CallerCountry,
		Stream: r.Stream, ShardId: r.ShardId, Index: r.Index, Node: e.Node,
	}
}

// windowStart is the start, in Unix nanoseconds, of the window of length
// w holding t: the greatest multiple of w not after t.
func windowStart(t int64, w time.Duration) int64 {
	n := int64(w)
	s := t / n * n
	if t < 0 && s != t {
		s -= n
	}
	return s
}
