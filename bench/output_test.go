package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// sampleResult runs a short mixed workload against an in-memory DB.
func sampleResult(t *testing.T) *Result {
	t.Helper()
	c := DefaultConfig()
	c.ReadProportion, c.UpdateProportion, c.ScanProportion = 0.5, 0.4, 0.1
	c.MaxScanLength, c.OperationCount, c.ThreadCount, c.Seed = 10, 2000, 2, 3
	w, err := NewWorkload(c)
	if err != nil {
		t.Fatal(err)
	}
	db := newMemDB()
	load(t, w, db)
	res, err := Run(context.Background(), RunConfig{Phase: PhaseRun, Workload: w, DBs: []DB{db}, Driver: "mem",
		WorkloadName: "mixed", Labels: map[string]string{"step": "s1"}, Settings: map[string]string{"read": "linearizable"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Start = res.Start.Round(0) // drop the monotonic reading, which JSON does not carry
	return res
}

func TestJSONRoundTrip(t *testing.T) {
	res := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Start.Equal(res.Start) {
		t.Fatalf("start %v, want %v", back.Start, res.Start)
	}
	back.Start = res.Start
	if !reflect.DeepEqual(back, res) {
		t.Fatalf("round trip changed the result:\n got %+v\nwant %+v", back, res)
	}
	if len(res.Ops) != 3 || res.Total.Count != 2000 {
		t.Fatalf("ops %+v, total %d", res.Ops, res.Total.Count)
	}
}

func TestCSVRoundTrip(t *testing.T) {
	res := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, res); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]OpSummary{}, res.Ops...)
	want = append(want, res.Total)
	for i := range want {
		want[i].Percentiles = nil // not in the CSV
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", rows, want)
	}
	if _, err := ReadCSV(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Fatal("ReadCSV accepted a foreign header")
	}
}

func TestHTMLReportIsSelfContained(t *testing.T) {
	res := sampleResult(t)
	// The run may take under a second; give it a timeline to plot.
	res.Timeline = []Sample{
		{Sec: 1, Ops: []SampleOp{{Op: "READ", Count: 900, P50Us: 100, P99Us: 900}, {Op: "UPDATE", Count: 700, P50Us: 150, P99Us: 1200}}},
		{Sec: 2, Ops: []SampleOp{{Op: "READ", Count: 950, P50Us: 110, P99Us: 800}, {Op: "UPDATE", Count: 650, P50Us: 160, P99Us: 1500}}},
	}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	imgs := regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`).FindAllStringSubmatch(page, -1)
	if len(imgs) != 3 {
		t.Fatalf("%d embedded PNG plots, want 3", len(imgs))
	}
	for _, m := range imgs {
		png, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("an embedded image is not a PNG (%v)", err)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("report contains %q: it must load nothing from elsewhere", bad)
		}
	}
	if !strings.Contains(page, "READ") || !strings.Contains(page, "label step=s1") {
		t.Error("report lacks the results table or the labels")
	}
}

func TestWriteTable(t *testing.T) {
	res := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteTable(&buf, res); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"run phase, workload mixed, driver mem", "P99.9", "READ", "UPDATE", "SCAN", "TOTAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatLatency(t *testing.T) {
	for us, want := range map[float64]string{850: "850µs", 1250: "1.25ms", 2.1e6: "2.10s"} {
		if got := FormatLatency(us); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", us, got, want)
		}
	}
}
