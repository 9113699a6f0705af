package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseProperties(t *testing.T) {
	in := `# a comment
! another comment

recordcount = 5000
operationcount:100
requestdistribution=zipfian
long=part one \
  part two
empty=
`
	p := Properties{"recordcount": "1"}
	if err := ParseProperties(strings.NewReader(in), "test", p); err != nil {
		t.Fatal(err)
	}
	want := Properties{"recordcount": "5000", "operationcount": "100", "requestdistribution": "zipfian",
		"long": "part one part two", "empty": ""}
	if len(p) != len(want) {
		t.Fatalf("got %v, want %v", p, want)
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
}

func TestParsePropertiesErrorNamesLine(t *testing.T) {
	err := ParseProperties(strings.NewReader("a=1\n\nno separator here\n"), "wl", Properties{})
	if err == nil || !strings.Contains(err.Error(), "wl:3") {
		t.Fatalf("got %v, want an error naming wl:3", err)
	}
	if err := (Properties{}).Set("=x"); err == nil {
		t.Fatal("Set accepted an empty key")
	}
}

func TestPropertyGetters(t *testing.T) {
	p := Properties{"n": "42", "f": "0.5", "secs": "90", "dur": "250ms", "bad": "x"}
	if v, err := p.Int("n", 0); err != nil || v != 42 {
		t.Errorf("Int = %d, %v", v, err)
	}
	if v, err := p.Int("missing", 7); err != nil || v != 7 {
		t.Errorf("Int default = %d, %v", v, err)
	}
	if v, err := p.Float("f", 0); err != nil || v != 0.5 {
		t.Errorf("Float = %v, %v", v, err)
	}
	if v, err := p.Duration("secs", 0); err != nil || v != 90*time.Second {
		t.Errorf("Duration(secs) = %v, %v", v, err)
	}
	if v, err := p.Duration("dur", 0); err != nil || v != 250*time.Millisecond {
		t.Errorf("Duration(dur) = %v, %v", v, err)
	}
	for _, get := range []func() error{
		func() error { _, err := p.Int("bad", 0); return err },
		func() error { _, err := p.Float("bad", 0); return err },
		func() error { _, err := p.Duration("bad", 0); return err },
	} {
		if err := get(); err == nil || !strings.Contains(err.Error(), "bad") {
			t.Errorf("got %v, want an error naming the property", err)
		}
	}
}

func TestParseConfigDefaultsAndOverrides(t *testing.T) {
	c, unknown, err := ParseConfig(Properties{})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("defaults: %v %v", err, unknown)
	}
	if c != DefaultConfig() {
		t.Fatalf("got %+v, want the defaults", c)
	}
	if c.InsertCount != c.RecordCount || c.KeyLength != 16 || c.FieldLength != 256 || c.FieldCount != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	c, unknown, err = ParseConfig(Properties{
		"recordcount": "500", "insertstart": "100", "threadcount": "8", "target": "1000",
		"maxexecutiontime": "30", "warmuptime": "5s", "requestdistribution": "latest",
		"readproportion": "0.5", "insertproportion": "0.5", "updateproportion": "0",
		"workload": "site.ycsb.workloads.CoreWorkload", "recordcuont": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.RecordCount != 500 || c.InsertStart != 100 || c.InsertCount != 400 || c.ThreadCount != 8 || c.Target != 1000 ||
		c.MaxExecutionTime != 30*time.Second || c.WarmupTime != 5*time.Second || c.RequestDistribution != DistLatest {
		t.Fatalf("got %+v", c)
	}
	if len(unknown) != 1 || unknown[0] != "recordcuont" {
		t.Fatalf("unknown = %v, want the misspelt key only", unknown)
	}
	// The rendered properties parse back to the same config.
	back, _, err := ParseConfig(c.Properties())
	if err != nil || back != c {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, c)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, p := range []Properties{
		{"recordcount": "ten"},
		{"fieldcount": "10"},
		{"requestdistribution": "hotspot"},
		{"readproportion": "0", "updateproportion": "0"},
		{"readproportion": "-1"},
		{"insertorder": "random"},
		{"maxscanlength": "0"},
		{"keylength": "6"},
		{"zipfianconstant": "1"},
		{"threadcount": "0"},
	} {
		if _, _, err := ParseConfig(p); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%v: got %v, want ErrInvalidConfig", p, err)
		}
	}
}
