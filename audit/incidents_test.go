package audit

import (
	"fmt"
	"slices"
	"testing"
	"time"

	cloverv1 "github.com/clover-kv/clover/api/cloverv1"
)

// rec is a record of stream at index i with entry e.
func rec(stream string, i uint64, e *cloverv1.AuditEntry) *cloverv1.AuditRecord {
	return &cloverv1.AuditRecord{Stream: stream, ShardId: 3, Index: i, Entry: e}
}

// req is an allowed get of keyspace ks by caller from country at offset d
// after t0.
func req(caller, country, ks string, d time.Duration) *cloverv1.AuditEntry {
	return &cloverv1.AuditEntry{
		TimeUnixNano: t0.Truncate(time.Minute).Add(d).UnixNano(), Caller: caller, CallerCountry: country,
		Node: "ie-1", Operation: "get", Keyspace: ks, Result: "allowed", Rule: "read-role",
	}
}

func refused(e *cloverv1.AuditEntry, rule string) *cloverv1.AuditEntry {
	e.Result, e.Rule = "refused", rule
	return e
}

// stream numbers entries as records of shard/3 in the order given.
func stream(es ...*cloverv1.AuditEntry) []*cloverv1.AuditRecord {
	out := make([]*cloverv1.AuditRecord, len(es))
	for i, e := range es {
		out[i] = rec("shard/3", uint64(i), e)
	}
	return out
}

// summary is "<kind> <caller> <country> <keyspace> @<index>".
func summary(ins []*cloverv1.AuditIncident) []string {
	var out []string
	for _, in := range ins {
		out = append(out, fmt.Sprintf("%s %s %s %s @%s/%d", in.Kind, in.Caller, in.CallerCountry, in.Keyspace, in.Stream, in.Index))
	}
	return out
}

func burst(caller, ks string, from time.Duration, n int, step time.Duration) []*cloverv1.AuditEntry {
	var out []*cloverv1.AuditEntry
	for i := range n {
		out = append(out, req(caller, "IE", ks, from+time.Duration(i)*step))
	}
	return out
}

func TestIncidents(t *testing.T) {
	small := IncidentOptions{VolumeWindow: time.Minute, VolumeThreshold: 3}
	admin := &cloverv1.AuditEntry{TimeUnixNano: t0.UnixNano(), Caller: "user:root", CallerCountry: "US", Operation: "set-policy", Keyspace: "people", Result: "allowed"}
	tests := []struct {
		name string
		recs []*cloverv1.AuditRecord
		opts IncidentOptions
		want []string
	}{
		{"nothing", nil, IncidentOptions{}, nil},
		{"quiet", stream(req("user:a", "IE", "people", 0), req("user:a", "IE", "people", time.Second)), IncidentOptions{}, nil},
		{"refused", stream(req("user:a", "IE", "people", 0), refused(req("user:b", "CN", "people", time.Second), "caller-jurisdiction")), IncidentOptions{},
			[]string{"refused user:b CN people @shard/3/1"}},
		{"refused-admin-counts", []*cloverv1.AuditRecord{rec("admin", 0, refused(&cloverv1.AuditEntry{Caller: "user:x", Operation: "drop-keyspace", Keyspace: "people"}, "role"))}, IncidentOptions{},
			[]string{"refused user:x  people @admin/0"}},
		{"first-country-is-the-baseline", stream(req("user:a", "DE", "people", 0)), IncidentOptions{}, nil},
		{"new-jurisdiction", stream(req("user:a", "IE", "people", 0), req("user:b", "DE", "people", time.Second), req("user:c", "DE", "people", 2*time.Second), req("user:a", "IE", "people", 3*time.Second)), IncidentOptions{},
			[]string{"new-jurisdiction user:b DE people @shard/3/1"}},
		{"jurisdiction-per-keyspace", stream(req("user:a", "IE", "people", 0), req("user:a", "DE", "orders", time.Second)), IncidentOptions{}, nil},
		{"refused-does-not-set-the-baseline", stream(refused(req("user:b", "CN", "people", 0), "residency"), req("user:a", "IE", "people", time.Second)), IncidentOptions{},
			[]string{"refused user:b CN people @shard/3/0"}},
		{"no-country-not-counted", stream(req("unattested", "", "people", 0), req("user:a", "IE", "people", time.Second)), IncidentOptions{}, nil},
		{"admin-skipped-for-jurisdiction", stream(req("user:a", "IE", "people", 0), admin), IncidentOptions{}, nil},
		{"admin-stream-skipped", append(stream(req("user:a", "IE", "people", 0)), rec("admin", 0, req("user:b", "US", "people", time.Second))), IncidentOptions{}, nil},
		{"volume-at-threshold", stream(burst("user:a", "people", 0, 3, time.Second)...), small, nil},
		{"volume-over-threshold", stream(burst("user:a", "people", 0, 10, time.Second)...), small,
			[]string{"volume user:a IE people @shard/3/3"}},
		{"volume-per-window", stream(burst("user:a", "people", 0, 8, 15*time.Second)...), small,
			[]string{"volume user:a IE people @shard/3/3", "volume user:a IE people @shard/3/7"}},
		{"volume-windows-are-aligned", stream(burst("user:a", "people", 58*time.Second, 4, time.Second)...), small, nil},
		{"volume-per-caller", stream(slices.Concat(burst("user:a", "people", 0, 2, time.Second), burst("user:b", "people", 0, 2, time.Second))...), small, nil},
		{"volume-per-keyspace", stream(slices.Concat(burst("user:a", "people", 0, 2, time.Second), burst("user:a", "orders", 0, 2, time.Second))...), small, nil},
		{"volume-refused-not-counted", stream(req("user:a", "IE", "people", 0), refused(req("user:a", "IE", "people", 1), "role"), refused(req("user:a", "IE", "people", 2), "role"), refused(req("user:a", "IE", "people", 3), "role")), small,
			[]string{"refused user:a IE people @shard/3/1", "refused user:a IE people @shard/3/2", "refused user:a IE people @shard/3/3"}},
		{"volume-default-threshold", stream(burst("user:a", "people", 0, 1001, time.Millisecond)...), IncidentOptions{},
			[]string{"volume user:a IE people @shard/3/1000"}},
		{"volume-default-window", stream(burst("user:a", "people", 0, 1001, 60*time.Millisecond)...), IncidentOptions{}, nil},
		{"sorted-by-time-then-stream-then-index", []*cloverv1.AuditRecord{
			rec("shard/9", 0, req("user:c", "FR", "people", 2*time.Second)),
			rec("shard/4", 5, req("user:b", "DE", "people", time.Second)),
			rec("shard/3", 7, req("user:b", "US", "people", time.Second)),
			rec("shard/3", 6, req("user:a", "IE", "people", time.Second)),
		}, IncidentOptions{}, []string{
			"new-jurisdiction user:b US people @shard/3/7",
			"new-jurisdiction user:b DE people @shard/4/5",
			"new-jurisdiction user:c FR people @shard/9/0",
		}},
		{"entry-read-from-leaf", []*cloverv1.AuditRecord{
			{Stream: "shard/3", Index: 0, Leaf: mustLeaf(t, refused(req("user:b", "CN", "people", 0), "residency"))},
			{Stream: "shard/3", Index: 1, Leaf: []byte{0xff}}, // does not decode: skipped
		}, IncidentOptions{}, []string{"refused user:b CN people @shard/3/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.recs)
			got := summary(Incidents(in, tt.opts))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("incidents\n%q\nwant\n%q", got, tt.want)
			}
			if !slices.Equal(in, tt.recs) {
				t.Fatal("Incidents reordered its argument")
			}
		})
	}
}

func TestIncidentFields(t *testing.T) {
	e := refused(req("user:b", "CN", "people", 0), "residency")
	e.Detail = "why"
	ins := Incidents([]*cloverv1.AuditRecord{{Stream: "shard/3", ShardId: 3, Index: 4, Entry: e}}, IncidentOptions{})
	want := &cloverv1.AuditIncident{TimeUnixNano: e.TimeUnixNano, Kind: "refused", Keyspace: "people", Caller: "user:b", CallerCountry: "CN",
		Rule: "residency", Operation: "get", Detail: "why", Stream: "shard/3", ShardId: 3, Index: 4, Node: "ie-1"}
	if len(ins) != 1 || ins[0].String() != want.String() {
		t.Fatalf("incident %v, want %v", ins, want)
	}
}

func TestWindowStart(t *testing.T) {
	m := int64(time.Minute)
	for _, tt := range []struct{ t, want int64 }{{0, 0}, {1, 0}, {m, m}, {m + 1, m}, {-1, -m}, {-m, -m}, {-m - 1, -2 * m}} {
		if got := windowStart(tt.t, time.Minute); got != tt.want {
			t.Errorf("windowStart(%d) = %d, want %d", tt.t, got, tt.want)
		}
	}
}
