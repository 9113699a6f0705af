package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseGoals(t *testing.T) {
	gs, err := ParseGoals("ops>=3, p99<=1x")
	if err != nil {
		t.Fatal(err)
	}
	want := []Goal{{Metric: "ops", AtLeast: true, Ratio: 3}, {Metric: "p99", Ratio: 1}}
	if len(gs) != 2 || gs[0] != want[0] || gs[1] != want[1] {
		t.Fatalf("got %+v, want %+v", gs, want)
	}
	if gs[0].String() != "ops>=3x" || gs[1].String() != "p99<=1x" {
		t.Fatalf("strings %q %q", gs[0], gs[1])
	}
	for _, bad := range []string{"ops=3", "speed>=2", "p99<=fast", "ops>=-1"} {
		if _, err := ParseGoals(bad); err == nil {
			t.Errorf("ParseGoals(%q) accepted", bad)
		}
	}
}

func result(driver, step string, ops, p50, p99 float64) *Result {
	return &Result{Driver: driver, Workload: "w", Labels: map[string]string{"step": step},
		Total: OpSummary{Op: "TOTAL", OpsPerSec: ops, P50Us: p50, P99Us: p99}}
}

func TestCompare(t *testing.T) {
	results := []*Result{
		result("etcd", "write-64", 1000, 2000, 9000),
		result("clover", "write-64", 3500, 900, 8000),
		result("clover", "write-1", 400, 1200, 3000),
		result("etcd", "write-1", 300, 1500, 4000),
		result("clover", "reads", 100, 1, 1),
	}
	goals := map[string][]Goal{}
	goals["write-64"], _ = ParseGoals("ops>=3,p99<=1")
	goals["write-1"], _ = ParseGoals("p50<=0.5")
	cs, err := Compare(results, "clover", "etcd", goals, []string{"write-1", "write-64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Step != "write-1" || cs[1].Step != "write-64" || cs[2].Step != "reads" {
		t.Fatalf("steps %+v", cs)
	}
	if r := cs[1].Ratio("ops"); r != 3.5 {
		t.Fatalf("ops ratio %v, want 3.5", r)
	}
	for i, want := range []string{"MISS", "PASS", "n/a"} {
		if got := cs[i].Verdict(); got != want {
			t.Errorf("%s: %s, want %s", cs[i].Step, got, want)
		}
	}
	var buf bytes.Buffer
	if err := WriteComparison(&buf, cs, "clover", "etcd"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"CLOVER OPS/S", "ETCD P99", "3.50x", "ops>=3x p99<=1x", "p50 0.80x", "PASS", "MISS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := Compare(append(results, result("clover", "reads", 1, 1, 1)), "clover", "etcd", nil, nil); err == nil {
		t.Error("two results of one driver for one step accepted")
	}
	if _, err := Compare([]*Result{result("redis", "x", 1, 1, 1)}, "clover", "etcd", nil, nil); err == nil {
		t.Error("a third driver accepted")
	}
}
