package server

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/status"
)

// chartSpan is the longest time the status page chart covers, one bar per minute (the tracker keeps
// two hours); a daemon younger than that gets a chart of its life so far, at least chartMinSpan.
const (
	chartSpan    = 2 * time.Hour
	chartMinSpan = 15 * time.Minute
)

// Chart geometry in SVG user units (the SVG scales to the page width).
const (
	chartW      = 1160
	chartH      = 300
	chartLeft   = 64 // events axis
	chartRight  = 84 // lag axis
	chartTop    = 40 // legend
	chartBottom = 46 // time labels and axis title
)

// chart is the status page's SVG chart, fully laid out: bars are events per minute on the left axis,
// the line is the largest watermark lag at the end of each minute on the right axis.
type chart struct {
	W, H                       int
	PlotX, PlotY, PlotW, PlotH float64
	PlotRight, PlotBottom      float64
	PlotMidX, PlotMidY         float64
	LagTitleX                  float64
	Bars                       []chartBar
	LagPoints                  string // SVG polyline points
	LagDots                    []chartDot
	EventTicks                 []chartTick // left axis
	LagTicks                   []chartTick // right axis
	TimeTicks                  []chartTick // bottom axis
	Empty                      bool        // nothing happened in the span: the chart says so
	MaxEvents                  int64
	MaxLag                     string
	Span                       string // "2h", "15m": what the chart covers
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type chartDot struct {
	X, Y  float64
	Title string
}

type chartTick struct {
	X, Y  float64
	Label string
}

// buildChart lays out history ending with the minute that contains now: the last chartSpan, or since
// startedAt when that is shorter (but at least chartMinSpan), so a young daemon's chart is readable.
func buildChart(history []status.Sample, now, startedAt time.Time) chart {
	c := chart{
		W: chartW, H: chartH,
		PlotX: chartLeft, PlotY: chartTop,
		PlotW: chartW - chartLeft - chartRight, PlotH: chartH - chartTop - chartBottom,
	}
	c.PlotRight, c.PlotBottom = c.PlotX+c.PlotW, c.PlotY+c.PlotH
	c.PlotMidX, c.PlotMidY = c.PlotX+c.PlotW/2, c.PlotY+c.PlotH/2
	c.LagTitleX = chartW - 14
	end := now.Truncate(time.Minute).Add(time.Minute)
	span := chartSpan
	if !startedAt.IsZero() {
		span = min(max(end.Sub(startedAt.Truncate(time.Minute)), chartMinSpan), chartSpan)
		span = span.Truncate(time.Minute)
	}
	start := end.Add(-span)
	c.Span = shortDuration(span.Seconds())
	slotW := c.PlotW / span.Minutes()
	tickEvery := timeTickEvery(span)

	var samples []status.Sample
	maxLag := 0.0
	for _, s := range history {
		if s.At.Before(start) || !s.At.Before(end) {
			continue
		}
		samples = append(samples, s)
		c.MaxEvents = max(c.MaxEvents, s.Events)
		maxLag = max(maxLag, s.LagSeconds)
	}
	// The tracker opens a sample for the current minute on every snapshot, so "no data" means no
	// events and no lag anywhere in the span, not no samples.
	c.Empty = c.MaxEvents == 0 && maxLag == 0

	evTop, evStep := niceScale(float64(c.MaxEvents))
	lagTop, lagStep := lagScale(maxLag)
	c.MaxLag = humanDuration(maxLag)
	yEvents := func(v float64) float64 { return c.PlotBottom - v/evTop*c.PlotH }
	yLag := func(v float64) float64 { return c.PlotBottom - math.Min(v, lagTop)/lagTop*c.PlotH }

	for v := 0.0; v <= evTop+evStep/2; v += evStep {
		c.EventTicks = append(c.EventTicks, chartTick{X: c.PlotX, Y: yEvents(v), Label: formatCount(v)})
	}
	for v := 0.0; v <= lagTop+lagStep/2; v += lagStep {
		c.LagTicks = append(c.LagTicks, chartTick{X: c.PlotRight, Y: yLag(v), Label: shortDuration(v)})
	}
	for t := start.Truncate(tickEvery); !t.After(end); t = t.Add(tickEvery) {
		if t.Before(start) {
			continue
		}
		x := c.PlotX + t.Sub(start).Minutes()*slotW
		c.TimeTicks = append(c.TimeTicks, chartTick{X: x, Y: c.PlotBottom, Label: t.UTC().Format("15:04")})
	}

	var pts []string
	for _, s := range samples {
		slot := s.At.Sub(start).Minutes()
		x := c.PlotX + slot*slotW
		minute := s.At.UTC().Format("15:04")
		if s.Events > 0 {
			y := yEvents(float64(s.Events))
			c.Bars = append(c.Bars, chartBar{
				X: x + slotW*0.1, Y: y, W: math.Max(slotW*0.8, 1), H: c.PlotBottom - y,
				Title: fmt.Sprintf("%s UTC: %d events", minute, s.Events),
			})
		}
		cx, cy := x+slotW/2, yLag(s.LagSeconds)
		pts = append(pts, strconv.FormatFloat(cx, 'f', 1, 64)+","+strconv.FormatFloat(cy, 'f', 1, 64))
		c.LagDots = append(c.LagDots, chartDot{X: cx, Y: cy,
			Title: fmt.Sprintf("%s UTC: max lag %s", minute, humanDuration(s.LagSeconds))})
	}
	c.LagPoints = strings.Join(pts, " ")
	return c
}

// timeTickEvery spaces the time axis labels 4 to 8 apart.
func timeTickEvery(span time.Duration) time.Duration {
	for _, d := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute} {
		if span/d <= 8 {
			return d
		}
	}
	return 30 * time.Minute
}

// niceScale returns an axis top and a step of 1, 2 or 5 × 10^k giving at most 5 intervals.
func niceScale(maxV float64) (top, step float64) {
	if maxV < 4 {
		return 4, 1
	}
	raw := maxV / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return math.Ceil(maxV/step) * step, step
}

// lagScale is niceScale for durations: steps are round times (30s, 5m, 1h …) so labels read well.
func lagScale(maxLag float64) (top, step float64) {
	steps := []float64{5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600,
		86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400}
	step = steps[len(steps)-1]
	for _, s := range steps {
		if s*4 >= maxLag {
			step = s
			break
		}
	}
	// At least two intervals, so the axis always has a middle label.
	top = math.Max(math.Ceil(maxLag/step), 2) * step
	return top, step
}

// shortDuration is a compact axis label: "30s", "5m", "1h30m", "2d".
func shortDuration(sec float64) string {
	s := int64(sec)
	switch {
	case s == 0:
		return "0"
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 != 0 {
			return fmt.Sprintf("%dm%02ds", s/60, s%60)
		}
		return fmt.Sprintf("%dm", s/60)
	case s < 86400:
		if s%3600 != 0 {
			return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
		}
		return fmt.Sprintf("%dh", s/3600)
	default:
		if s%86400 != 0 {
			return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
		}
		return fmt.Sprintf("%dd", s/86400)
	}
}

func formatCount(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
