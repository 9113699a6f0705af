package server_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clover-kv/clover/client"
	"github.com/clover-kv/clover/internal/testcluster"
)

// refusedByGuardrail fails t unless err is the guardrail's refusal of
// keyspace name: ErrPermissionDenied with rule personal-data-guardrail, a
// message naming the rule and the keyspace.
func refusedByGuardrail(t *testing.T, what, name string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.Is(err, client.ErrPermissionDenied) || !errors.As(err, &ce) || ce.Rule != "personal-data-guardrail" {
		t.Fatalf("%s: %v, want ErrPermissionDenied with rule personal-data-guardrail", what, err)
	}
	if !strings.Contains(ce.Message, "personal-data-guardrail") || !strings.Contains(ce.Message, `"`+name+`"`) {
		t.Errorf("%s: message %q does not name the rule and keyspace %q", what, ce.Message, name)
	}
}

func withCallers(p client.Policy, callers ...string) client.Policy {
	p.CallerJurisdictions = callers
	return p
}

func withClass(p client.Policy, class string) client.Policy {
	p.Class = class
	return p
}

// The guardrail set when the cluster was founded (EEA) refuses every admin
// change that would put a personal keyspace's residency or callers outside
// it, whichever node leads the meta group, across a restart of the whole
// cluster, and whatever a restarted node's own flag says; public
// keyspaces may be anywhere.
func TestPersonalDataGuardrail(t *testing.T) {
	c := testcluster.Start(t, testcluster.DemoNodes(), testcluster.PersonalDataGuardrail("eea"))
	ctx := ctxT(t)
	cl := c.Client(t)

	st, err := cl.ClusterStatus(ctx)
	if err != nil || st.PersonalDataJurisdiction != "EEA" {
		t.Fatalf("cluster status guardrail %q (%v), want EEA", st.PersonalDataJurisdiction, err)
	}
	personal := func(allow []string, countries ...string) client.Policy {
		return client.Policy{AllowJurisdictions: allow, AllowCountries: countries, Replicas: 3, Class: "personal"}
	}
	// Creation outside the guardrail is refused, and nothing is created.
	for _, tc := range []struct {
		what string
		p    client.Policy
	}{
		{"residency anywhere", personal(nil)},
		{"residency EEA,US", personal([]string{"EEA"}, "US")},
		{"callers EEA,CN", withCallers(personal([]string{"EEA"}), "EEA", "CN")},
		{"callers anywhere", withCallers(personal([]string{"EEA"}), "ANY")},
	} {
		_, err := cl.CreateKeyspace(ctx, "outside", 1, tc.p)
		refusedByGuardrail(t, "create personal "+tc.what, "outside", err)
	}
	if _, err := cl.Keyspace(ctx, "outside"); !errors.Is(err, client.ErrUnknownKeyspace) {
		t.Fatalf("a refused keyspace exists: %v", err)
	}
	// Public data may live anywhere; personal data inside the guardrail.
	if _, err := cl.CreateKeyspace(ctx, "videos", 1, client.Policy{Replicas: 3, Class: "public"}); err != nil {
		t.Fatalf("create public keyspace anywhere: %v", err)
	}
	if _, err := cl.CreateKeyspace(ctx, "users", 1, withCallers(personal([]string{"EEA"}), "IE", "NO")); err != nil {
		t.Fatalf("create personal keyspace in the EEA: %v", err)
	}

	refusesWidening := func(t *testing.T, cl *client.Client) {
		t.Helper()
		for _, tc := range []struct {
			what string
			p    client.Policy
		}{
			{"residency anywhere", personal(nil)},
			{"residency EEA,US", personal([]string{"EEA"}, "US")},
			{"callers EEA,CN", withCallers(personal([]string{"EEA"}), "EEA", "CN")},
			{"callers anywhere", withCallers(personal([]string{"EEA"}), "ANY")},
			{"class public", withClass(personal([]string{"EEA"}), "public")},
		} {
			_, err := cl.SetPolicy(ctx, "users", tc.p)
			refusedByGuardrail(t, "set-policy users "+tc.what, "users", err)
		}
		ks, err := cl.Keyspace(ctx, "users")
		if err != nil || !slices.Equal(ks.Policy.AllowJurisdictions, []string{"EEA"}) || ks.Policy.AllowCountries != nil ||
			ks.Policy.Class != "personal" || !slices.Equal(ks.Policy.CallerCountries, []string{"IE", "NO"}) {
			t.Fatalf("users after refused changes: %+v (%v), want unchanged", ks.Policy, err)
		}
	}
	refusesWidening(t, cl)
	// A public keyspace may be moved anywhere, and may become personal
	// only inside the guardrail.
	if _, err := cl.SetPolicy(ctx, "videos", client.Policy{AllowCountries: []string{"US"}}); err != nil {
		t.Fatalf("move public videos to the US: %v", err)
	}
	_, err = cl.SetPolicy(ctx, "videos", client.Policy{AllowCountries: []string{"US"}, Class: "personal"})
	refusedByGuardrail(t, "make videos in the US personal", "videos", err)

	t.Run("meta-leader change", func(t *testing.T) {
		// The founder is the only node given the flag: once it is gone,
		// the meta leader has only the record to go by.
		c.StopNode("ie-1")
		cl := c.Client(t)
		c.WaitFor(30*time.Second, "a meta leader other than ie-1", func() bool {
			st, err := cl.ClusterStatus(ctx)
			return err == nil && st.MetaLeader != "" && st.MetaLeader != "ie-1"
		})
		refusesWidening(t, cl)
		c.StartNode("ie-1")
		c.WaitReady("ie-1")
	})

	t.Run("restart of the whole cluster", func(t *testing.T) {
		for _, n := range c.Nodes {
			c.StopNode(n.Spec.ID)
		}
		// The founder's flag changes; the recorded guardrail does not, and
		// the founder says so.
		var logs lockedBuffer
		founder := &c.Node("ie-1").Config
		founder.PersonalDataJurisdiction = "IE"
		founder.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		for _, n := range c.Nodes {
			c.StartNode(n.Spec.ID)
		}
		for _, n := range c.Nodes {
			c.WaitReady(n.Spec.ID)
		}
		cl := c.Client(t)
		c.WaitFor(30*time.Second, "cluster status", func() bool {
			_, err := cl.ClusterStatus(ctx)
			return err == nil
		})
		st, err := cl.ClusterStatus(ctx)
		if err != nil || st.PersonalDataJurisdiction != "EEA" {
			t.Fatalf("guardrail after restart %q (%v), want EEA", st.PersonalDataJurisdiction, err)
		}
		c.WaitFor(30*time.Second, "the founder's warning that its flag differs from the record", func() bool {
			return bytes.Contains(logs.Bytes(), []byte("personal-data-jurisdiction differs from the guardrail recorded"))
		})
		refusesWidening(t, cl)
		// NO is inside the recorded EEA, though not inside the new flag's IE.
		if _, err := cl.SetPolicy(ctx, "users", client.Policy{AllowCountries: []string{"IE", "NO"}}); err != nil {
			t.Fatalf("set-policy users to IE,NO under the recorded EEA guardrail: %v", err)
		}
	})
}

// Without a guardrail a personal keyspace may live anywhere, but it still
// cannot be made public.
func TestPersonalKeyspaceCannotBeMadePublic(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes()[:1])
	ctx := ctxT(t)
	cl := c.Client(t)
	if st, err := cl.ClusterStatus(ctx); err != nil || st.PersonalDataJurisdiction != "" {
		t.Fatalf("cluster status guardrail %q (%v), want none", st.PersonalDataJurisdiction, err)
	}
	if _, err := cl.CreateKeyspace(ctx, "users", 1, client.Policy{Replicas: 1, Class: "personal"}); err != nil {
		t.Fatalf("personal keyspace anywhere without a guardrail: %v", err)
	}
	_, err := cl.SetPolicy(ctx, "users", client.Policy{Class: "public"})
	refusedByGuardrail(t, "make personal users public", "users", err)
	// An empty class keeps the current one: personal, and allowed.
	if ks, err := cl.SetPolicy(ctx, "users", client.Policy{AllowJurisdictions: []string{"EEA"}}); err != nil || ks.Policy.Class != "personal" {
		t.Fatalf("set-policy users without a class: %+v %v", ks.Policy, err)
	}
}

// The access policy round-trips through create, show and set-policy, its
// caller jurisdictions resolved by the meta leader; bad roles and
// jurisdictions are InvalidArgument naming the field.
func TestAccessPolicyRoundTrip(t *testing.T) {
	c := testcluster.Start(t, threeEEANodes()[:1])
	ctx := ctxT(t)
	cl := c.Client(t)
	p := client.Policy{AllowJurisdictions: []string{"EEA"}, Replicas: 1, Class: "personal",
		ReadRoles: []string{"reader", "admin"}, WriteRoles: []string{"writer"}, CallerJurisdictions: []string{"NO", "IE"}}
	created, err := cl.CreateKeyspace(ctx, "users", 1, p)
	if err != nil {
		t.Fatal(err)
	}
	shown, err := cl.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []client.Policy{created.Policy, shown.Policy} {
		if !slices.Equal(got.ReadRoles, p.ReadRoles) || !slices.Equal(got.WriteRoles, p.WriteRoles) ||
			!slices.Equal(got.CallerJurisdictions, p.CallerJurisdictions) ||
			!slices.Equal(got.CallerCountries, []string{"IE", "NO"}) || got.CallerAnywhere {
			t.Errorf("access policy %+v, want %+v resolved to IE,NO", got, p)
		}
	}
	// set-policy replaces it; empty lists restore the defaults: reader,
	// writer, and callers from the residency.
	set, err := cl.SetPolicy(ctx, "users", client.Policy{AllowCountries: []string{"IE"}, WriteRoles: []string{"writer", "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	shown, err = cl.Keyspace(ctx, "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []client.Policy{set.Policy, shown.Policy} {
		if got.ReadRoles != nil || !slices.Equal(got.WriteRoles, []string{"writer", "admin"}) || got.CallerJurisdictions != nil ||
			!slices.Equal(got.CallerCountries, []string{"IE"}) || got.CallerAnywhere {
			t.Errorf("after set-policy: %+v, want default roles but writer,admin and callers from the residency IE", got)
		}
	}
	if _, err := cl.CreateKeyspace(ctx, "videos", 1, client.Policy{Replicas: 1, Class: "public"}); err != nil {
		t.Fatal(err)
	}
	if ks, err := cl.Keyspace(ctx, "videos"); err != nil || !ks.Policy.CallerAnywhere || ks.Policy.CallerCountries != nil {
		t.Errorf("public keyspace's default callers %+v (%v), want anywhere", ks.Policy, err)
	}

	for _, tc := range []struct {
		what, field string
		p           client.Policy
	}{
		{"auditor reads", "read_roles[0]", client.Policy{ReadRoles: []string{"auditor"}}},
		{"unknown write role", "write_roles[1]", client.Policy{WriteRoles: []string{"writer", "owner"}}},
		{"unknown caller jurisdiction", "caller_jurisdictions[0]", client.Policy{CallerJurisdictions: []string{"XX"}}},
		{"ANY and more", "caller_jurisdictions[1]", client.Policy{CallerJurisdictions: []string{"EEA", "ANY"}}},
	} {
		tc.p.AllowJurisdictions, tc.p.Replicas = []string{"EEA"}, 1
		_, err := cl.CreateKeyspace(ctx, "bad", 1, tc.p)
		if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("create with %s: %v, want ErrInvalidArgument naming %s", tc.what, err, tc.field)
		}
		_, err = cl.SetPolicy(ctx, "users", tc.p)
		if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("set-policy with %s: %v, want ErrInvalidArgument naming %s", tc.what, err, tc.field)
		}
	}
}
