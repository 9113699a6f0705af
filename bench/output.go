package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// FormatLatency formats microseconds for people: 850µs, 1.25ms, 2.10s.
func FormatLatency(us float64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// WriteTable writes the result as a text table: a heading line, then one row
// per operation type and a total.
func WriteTable(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "%s phase, workload %s, driver %s: %d clients, %d client instances", r.Phase, r.Workload, r.Driver, r.Clients, r.Conns)
	if r.TargetOpsPerSec > 0 {
		fmt.Fprintf(w, ", target %.0f ops/s", r.TargetOpsPerSec)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "measured %.1fs after a %.1fs warm-up: %d ops, %.1f ops/s, %d errors",
		r.DurationSec, r.WarmupSec, r.Total.Count, r.Total.OpsPerSec, r.Total.Errors)
	if r.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	if r.StuckWorkers > 0 {
		fmt.Fprintf(w, "WARNING: %d clients were stuck in an operation that never returned; their operations are left out\n", r.StuckWorkers)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OP\tCOUNT\tERRORS\tNOT FOUND\tOPS/S\tMEAN\tP50\tP90\tP99\tP99.9\tMAX\t")
	rows := append(append([]OpSummary{}, r.Ops...), r.Total)
	for _, o := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", o.Op, o.Count, o.Errors, o.NotFound, o.OpsPerSec,
			FormatLatency(o.MeanUs), FormatLatency(o.P50Us), FormatLatency(o.P90Us), FormatLatency(o.P99Us),
			FormatLatency(o.P999Us), FormatLatency(o.MaxUs))
	}
	return tw.Flush()
}

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a result written by WriteJSON.
func ReadJSON(rd io.Reader) (*Result, error) {
	var r Result
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode result: %w", err)
	}
	return &r, nil
}

// ReadJSONFile reads a result file written by WriteJSON.
func ReadJSONFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

var csvHeader = []string{"driver", "phase", "workload", "op", "count", "errors", "not_found", "ops_per_sec",
	"mean_us", "min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"}

// WriteCSV writes one row per operation type and a TOTAL row, with a header.
func WriteCSV(w io.Writer, r *Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	ff := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	for _, o := range append(append([]OpSummary{}, r.Ops...), r.Total) {
		row := []string{r.Driver, r.Phase, r.Workload, o.Op, strconv.FormatInt(o.Count, 10), strconv.FormatInt(o.Errors, 10),
			strconv.FormatInt(o.NotFound, 10), ff(o.OpsPerSec), ff(o.MeanUs), ff(o.MinUs), ff(o.P50Us), ff(o.P90Us),
			ff(o.P99Us), ff(o.P999Us), ff(o.MaxUs)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads the rows WriteCSV wrote, TOTAL included.
func ReadCSV(rd io.Reader) ([]OpSummary, error) {
	recs, err := csv.NewReader(rd).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		return nil, fmt.Errorf("csv: want header %s", strings.Join(csvHeader, ","))
	}
	var out []OpSummary
	for i, rec := range recs[1:] {
		var o OpSummary
		var errs []error
		pi := func(s string) int64 { v, err := strconv.ParseInt(s, 10, 64); errs = append(errs, err); return v }
		pf := func(s string) float64 { v, err := strconv.ParseFloat(s, 64); errs = append(errs, err); return v }
		o.Op = rec[3]
		o.Count, o.Errors, o.NotFound = pi(rec[4]), pi(rec[5]), pi(rec[6])
		o.OpsPerSec, o.MeanUs, o.MinUs, o.P50Us = pf(rec[7]), pf(rec[8]), pf(rec[9]), pf(rec[10])
		o.P90Us, o.P99Us, o.P999Us, o.MaxUs = pf(rec[11]), pf(rec[12]), pf(rec[13]), pf(rec[14])
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("csv row %d: %w", i+2, err)
			}
		}
		out = append(out, o)
	}
	return out, nil
}
