package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WriteHTML writes a self-contained HTML report of the result: the summary
// table and plots of throughput and latency over time (one-second buckets)
// and of the latency distribution. The plots are PNG images embedded as data
// URIs; the page loads nothing else, so it works offline.
func WriteHTML(w io.Writer, r *Result) error {
	var plots []htmlPlot
	for _, p := range []struct {
		title string
		build func(*Result) (*plot.Plot, error)
	}{
		{"Throughput per second", throughputPlot},
		{"Latency per second (p50 dashed, p99 solid)", latencyTimelinePlot},
		{"Latency distribution", percentilePlot},
	} {
		pl, err := p.build(r)
		if err != nil {
			return fmt.Errorf("plot %q: %w", p.title, err)
		}
		if pl == nil {
			continue
		}
		uri, err := pngDataURI(pl)
		if err != nil {
			return fmt.Errorf("plot %q: %w", p.title, err)
		}
		img := fmt.Sprintf(`<img alt="%s" src="%s">`, template.HTMLEscapeString(p.title), uri)
		plots = append(plots, htmlPlot{Title: p.title, Img: template.HTML(img)})
	}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		return err
	}
	return reportTemplate.Execute(w, struct {
		R     *Result
		Table string
		Plots []htmlPlot
		Props []string
	}{r, table.String(), plots, propertyLines(r)})
}

type htmlPlot struct {
	Title string
	// Img is the <img> element with the plot as a data URI. It is built
	// from a fixed title and base64 characters only, so it needs no escaping
	// (html/template would entity-escape every '+' of the base64).
	Img template.HTML
}

func propertyLines(r *Result) []string {
	var out []string
	for k, v := range r.Properties {
		out = append(out, k+"="+v)
	}
	for k, v := range r.Settings {
		out = append(out, "--"+k+"="+v)
	}
	for k, v := range r.Labels {
		out = append(out, "label "+k+"="+v)
	}
	slices.Sort(out)
	return out
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>clover-bench: {{.R.Workload}} ({{.R.Phase}}, {{.R.Driver}})</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
pre { background: #f4f4f4; padding: 1em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #ddd; margin-bottom: 1em; }
</style>
</head>
<body>
<h1>{{.R.Workload}}: {{.R.Phase}} phase against {{.R.Driver}}</h1>
<p>Started {{.R.Start.Format "2006-01-02 15:04:05 MST"}}; {{.R.Clients}} clients over {{.R.Conns}} connections.</p>
<pre>{{.Table}}</pre>
{{range .Plots}}<h2>{{.Title}}</h2>
{{.Img}}
{{end}}<h2>Settings</h2>
<pre>{{range .Props}}{{.}}
{{end}}</pre>
</body>
</html>
`))

func pngDataURI(p *plot.Plot) (string, error) {
	wt, err := p.WriterTo(9*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// opNamesIn lists the operation types of the timeline in a fixed order.
func opNamesIn(r *Result) []string {
	var names []string
	for _, o := range r.Ops {
		names = append(names, o.Op)
	}
	return names
}

func throughputPlot(r *Result) (*plot.Plot, error) {
	if len(r.Timeline) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.X.Label.Text = "seconds after warm-up"
	p.Y.Label.Text = "operations per second"
	p.Y.Min = 0
	p.Legend.Top = true
	names := opNamesIn(r)
	if len(names) > 1 {
		names = append(names, "TOTAL")
	}
	for i, name := range names {
		xys := make(plotter.XYs, 0, len(r.Timeline))
		prev := 0.0
		for _, s := range r.Timeline {
			var n int64
			if name == "TOTAL" {
				n = s.TotalOps()
			} else if o, ok := sampleOp(s, name); ok {
				n = o.Count
			}
			// Buckets are about a second long; scale by their real length.
			width := s.Sec - prev
			prev = s.Sec
			if width <= 0.05 {
				continue
			}
			xys = append(xys, plotter.XY{X: s.Sec, Y: float64(n) / width})
		}
		if err := addLine(p, name, xys, i, 0); err != nil {
			return nil, err
		}
	}
	return withHeadroom(p), nil
}

func latencyTimelinePlot(r *Result) (*plot.Plot, error) {
	if len(r.Timeline) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.X.Label.Text = "seconds after warm-up"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Min = 0
	p.Legend.Top = true
	for i, name := range opNamesIn(r) {
		var p50, p99 plotter.XYs
		for _, s := range r.Timeline {
			if o, ok := sampleOp(s, name); ok && o.Count > 0 {
				p50 = append(p50, plotter.XY{X: s.Sec, Y: o.P50Us / 1e3})
				p99 = append(p99, plotter.XY{X: s.Sec, Y: o.P99Us / 1e3})
			}
		}
		if err := addLine(p, name+" p99", p99, i, 0); err != nil {
			return nil, err
		}
		if err := addLine(p, name+" p50", p50, i, 1); err != nil {
			return nil, err
		}
	}
	return withHeadroom(p), nil
}

// withHeadroom starts the axes at 0 and leaves room above the data for the
// legend.
func withHeadroom(p *plot.Plot) *plot.Plot {
	p.X.Min, p.Y.Min = 0, 0
	p.Y.Max *= 1.3
	return p
}

// percentileTicks label the distribution plot's x axis, where x is
// -log10(1 - percentile/100): 1 is p90, 2 is p99, 3 is p99.9.
var percentileTicks = plot.ConstantTicks{
	{Value: 0, Label: "0%"}, {Value: 1, Label: "90%"}, {Value: 2, Label: "99%"}, {Value: 3, Label: "99.9%"},
	{Value: 4, Label: "99.99%"}, {Value: 5, Label: "99.999%"},
}

func percentilePlot(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Tick.Marker = percentileTicks
	// Room on the right for the last tick's label.
	p.X.Min, p.X.Max, p.Y.Min = 0, 5.3, 0
	p.Legend.Top, p.Legend.Left = true, true
	lines := 0
	for i, o := range r.Ops {
		var xys plotter.XYs
		for _, pt := range o.Percentiles {
			if pt.Percentile >= 100 {
				continue
			}
			xys = append(xys, plotter.XY{X: -math.Log10(1 - pt.Percentile/100), Y: pt.LatencyUs / 1e3})
		}
		if err := addLine(p, o.Op, xys, i, 0); err != nil {
			return nil, err
		}
		lines += len(xys)
	}
	if lines == 0 {
		return nil, nil
	}
	p.Y.Max *= 1.3
	return p, nil
}

func sampleOp(s Sample, name string) (SampleOp, bool) {
	for _, o := range s.Ops {
		if o.Op == name {
			return o, true
		}
	}
	return SampleOp{}, false
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, colour, dashes int) error {
	if len(xys) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(colour)
	l.Dashes = plotutil.Dashes(dashes)
	l.Width = vg.Points(1.5)
	// Points mark the samples, so that a short run's few are visible.
	pts.Color = l.Color
	pts.Shape = draw.CircleGlyph{}
	pts.Radius = vg.Points(1.5)
	p.Add(l, pts)
	p.Legend.Add(name, l)
	return nil
}
