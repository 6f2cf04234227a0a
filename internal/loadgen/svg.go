package loadgen

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WriteChart writes an SVG chart of the reports of one scenario at one
// upstream latency: throughput (left) and p99 latency (right) against
// concurrency, one line per target. Other reports are left out.
func WriteChart(w io.Writer, reports []Report, scenario Scenario, latency time.Duration) error {
	var rs []Report
	var xs []int
	var labels []string
	for _, r := range reports {
		if r.Scenario != scenario || r.UpstreamLatency != latency {
			continue
		}
		rs = append(rs, r)
		if !slices.Contains(xs, r.Concurrency) {
			xs = append(xs, r.Concurrency)
		}
		if !slices.Contains(labels, r.Label) {
			labels = append(labels, r.Label)
		}
	}
	if len(rs) == 0 {
		return fmt.Errorf("loadgen: no %s report at %s upstream latency to chart", scenario, latency)
	}
	slices.Sort(xs)

	const width, height, panelW, top, plotH = 960, 380, 400, 50, 240
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" text-anchor="middle">flashload %s, %s upstream latency: flashauth against the baselines</text>`+"\n",
		width/2, html.EscapeString(string(scenario)), msInt(latency))
	panels := []struct {
		title string
		value func(Report) float64
	}{
		{"throughput (req/s)", func(r Report) float64 { return r.Throughput }},
		{"p99 latency (ms)", func(r Report) float64 { return float64(r.P99) / float64(time.Millisecond) }},
	}
	for p, panel := range panels {
		x0 := 70 + p*(panelW+80)
		top := top
		maxV := 0.0
		for _, r := range rs {
			maxV = max(maxV, panel.value(r))
		}
		maxV = niceCeil(maxV)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="13">%s</text>`+"\n", x0+panelW/2, top-8, panel.title)
		// Axes, grid and ticks.
		for i := 0; i <= 4; i++ {
			y := top + plotH - i*plotH/4
			v := maxV * float64(i) / 4
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x0, y, x0+panelW, y)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0-6, y+4, tick(v))
		}
		xpos := func(i int) int {
			if len(xs) == 1 {
				return x0 + panelW/2
			}
			return x0 + 20 + i*(panelW-40)/(len(xs)-1)
		}
		for i, c := range xs {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%d</text>`+"\n", xpos(i), top+plotH+18, c)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">concurrent clients</text>`+"\n", x0+panelW/2, top+plotH+36)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", x0, top, panelW, plotH)
		for li, label := range labels {
			var pts []string
			for i, c := range xs {
				for _, r := range rs {
					if r.Label == label && r.Concurrency == c {
						y := float64(top+plotH) - panel.value(r)/maxV*plotH
						pts = append(pts, fmt.Sprintf("%d,%.1f", xpos(i), y))
						fmt.Fprintf(&b, `<circle cx="%d" cy="%.1f" r="3" fill="%s"/>`+"\n", xpos(i), y, color(li))
					}
				}
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), color(li))
		}
	}
	for li, label := range labels {
		x := 70 + li*200
		y := height - 20
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, y-4, color(li), x+20, y, html.EscapeString(label))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func color(i int) string {
	palette := []string{"#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b"}
	return palette[i%len(palette)]
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
