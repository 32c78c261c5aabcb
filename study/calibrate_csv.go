package study

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vdpp/vdpp/timeline"
)

// CalCSVColumns are the columns of a calibration CSV, in the order the
// header usually lists them (any order is read).
var CalCSVColumns = []string{"devices", "layout", "steps", "samples", "first_sample_s", "steady_s_per_sample", "makespan_s"}

// maxCalFile bounds a calibration input file.
const maxCalFile = 64 << 20

// ReadCalRuns reads measured runs from a file: a metrics.json written by
// `vdexec run --out DIR` (a name ending in .json), or else a CSV whose
// header names the columns CalCSVColumns (one row per run; layout
// pipeline or data-parallel; steady_s_per_sample, and either of the other
// two times, may be empty when not measured; lines starting with # are
// comments). steps is the plan's sampler steps; a metrics.json does not
// record its steps, so they are read from the timeline.json beside it
// when there is one (and are otherwise taken to be the plan's, which
// notes says). Every error names the file, the CSV line, the field and
// the rule.
func ReadCalRuns(path string, steps int) (runs []CalRun, notes []string, err error) {
	data, err := readCalFile(path)
	if err != nil {
		return nil, nil, err
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		r, note, err := parseMetricsJSON(path, data, steps)
		if err != nil {
			return nil, nil, err
		}
		if note != "" {
			notes = append(notes, note)
		}
		return []CalRun{r}, notes, nil
	}
	runs, err = ParseCalCSV(path, data)
	return runs, nil, err
}

func readCalFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read it: %w", path, unwrapPath(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a file (a %s); give a metrics.json or a CSV file", path, kindWord(fi.Mode()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCalFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read it: %w", path, unwrapPath(err))
	}
	if len(data) > maxCalFile {
		return nil, fmt.Errorf("%s: larger than %d MiB; a calibration input is a few rows or one metrics.json", path, maxCalFile>>20)
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kindWord(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeDevice != 0:
		return "device"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// ParseCalCSV parses a calibration CSV (see ReadCalRuns); name is the
// file for messages. Runs are named "NAME:LINE".
func ParseCalCSV(name string, data []byte) ([]CalRun, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty; want a header line %s and one row per run", name, strings.Join(CalCSVColumns, ","))
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !isCalColumn(h) {
			line, _ := r.FieldPos(i)
			return nil, fmt.Errorf("%s:%d: unknown column %q; the columns are %s", name, line, h, strings.Join(CalCSVColumns, ","))
		}
		if _, dup := col[h]; dup {
			line, _ := r.FieldPos(i)
			return nil, fmt.Errorf("%s:%d: column %s is given twice", name, line, h)
		}
		col[h] = i
	}
	var missing []string
	for _, c := range CalCSVColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		line, _ := r.FieldPos(0)
		return nil, fmt.Errorf("%s:%d: missing column(s) %s; the header must name %s", name, line, strings.Join(missing, ", "), strings.Join(CalCSVColumns, ","))
	}
	var runs []CalRun
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := r.FieldPos(0)
		if len(runs) == MaxCalRuns {
			return nil, fmt.Errorf("%s:%d: more than %d runs; calibrate fits at most %d", name, line, MaxCalRuns, MaxCalRuns)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s:%d: %d fields, but the header has %d columns", name, line, len(rec), len(header))
		}
		run, err := parseCalRow(name, line, rec, col)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no runs; after the header, give one row per run", name)
	}
	return runs, nil
}

func isCalColumn(h string) bool {
	for _, c := range CalCSVColumns {
		if c == h {
			return true
		}
	}
	return false
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: not CSV: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// parseCalRow parses one CSV row.
func parseCalRow(name string, line int, rec []string, col map[string]int) (CalRun, error) {
	at := func(field string) string { return strings.TrimSpace(rec[col[field]]) }
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s: %s", name, line, field, fmt.Sprintf(format, args...))
	}
	whole := func(field string, least int) (int, error) {
		s := at(field)
		v, err := strconv.Atoi(s)
		switch {
		case s == "":
			return 0, bad(field, "empty; want a whole number ≥ %d", least)
		case err != nil:
			return 0, bad(field, "%q is not a whole number", s)
		case v < least:
			return 0, bad(field, "%d; want at least %d", v, least)
		case v > 1<<30:
			return 0, bad(field, "%d is too large", v)
		}
		return v, nil
	}
	r := CalRun{Where: fmt.Sprintf("%s:%d", name, line)}
	var err error
	if r.Devices, err = whole("devices", 1); err != nil {
		return r, err
	}
	if r.Steps, err = whole("steps", 1); err != nil {
		return r, err
	}
	if r.Samples, err = whole("samples", 1); err != nil {
		return r, err
	}
	switch l := at("layout"); l {
	case "pipeline":
		r.Replicas = 1
	case "data-parallel":
		r.Replicas = r.Devices
	default:
		return r, bad("layout", "%q; want pipeline or data-parallel", l)
	}
	measured := false
	for i, field := range CalMetricNames {
		s := at(field)
		r.Measured[i] = math.NaN()
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		switch {
		case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
			return r, bad(field, "%q is not a number of seconds", s)
		case v < 0:
			return r, bad(field, "%s is negative; a time is ≥ 0 seconds", s)
		case v == 0:
			return r, bad(field, "0; a measured time is > 0 seconds (leave the field empty when it was not measured)")
		}
		r.Measured[i] = v
		measured = true
	}
	if !measured {
		return r, fmt.Errorf("%s:%d: nothing measured: %s are all empty; give at least one", name, line, strings.Join(CalMetricNames[:], ", "))
	}
	if !math.IsNaN(r.Measured[CalSteady]) && r.Samples < 2 {
		return r, bad("steady_s_per_sample", "needs at least 2 samples; the run has %d (leave it empty)", r.Samples)
	}
	return r, nil
}

// metricsFile is what calibration reads of a vdexec metrics.json.
type metricsFile struct {
	Plan        string            `json:"plan"`
	Layout      string            `json:"layout"`
	Source      string            `json:"source"`
	Done        int               `json:"done"`
	Total       int               `json:"total"`
	Interrupted bool              `json:"interrupted"`
	Error       string            `json:"error"`
	Metrics     *timeline.Metrics `json:"metrics"`
}

// parseMetricsJSON reads one run from a vdexec metrics.json.
func parseMetricsJSON(path string, data []byte, steps int) (CalRun, string, error) {
	var f metricsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return CalRun{}, "", fmt.Errorf("%s: not a metrics.json: %v", path, err)
	}
	r := CalRun{Where: path}
	switch {
	case f.Source != "exec":
		return r, "", fmt.Errorf("%s: source %q, not a measured run; calibrate fits runs that vdexec measured (vdexec run --out DIR writes DIR/metrics.json with source exec), or a CSV", path, f.Source)
	case f.Interrupted || f.Error != "" || f.Done < f.Total:
		why := "interrupted"
		if f.Error != "" {
			why = "failed: " + f.Error
		}
		return r, "", fmt.Errorf("%s: the run was %s after %d of %d samples; calibrate fits finished runs only", path, why, f.Done, f.Total)
	case f.Metrics == nil:
		return r, "", fmt.Errorf("%s: no metrics", path)
	}
	reps, stages, ok := parseLayoutLabel(f.Layout)
	if !ok {
		return r, "", fmt.Errorf("%s: layout %q; want a vdexec layout such as \"pipeline 1×2\" or \"data parallel 2×1\"", path, f.Layout)
	}
	m := f.Metrics
	r.Devices, r.Replicas, r.Samples = reps*stages, reps, m.Samples
	if r.Samples < 1 {
		return r, "", fmt.Errorf("%s: metrics.samples %d; the run finished no sample", path, r.Samples)
	}
	r.Measured = [numCalMetrics]float64{float64(m.FirstLatencyNS) / 1e9, math.NaN(), float64(m.MakespanNS) / 1e9}
	if !m.TooFewSamples && m.Throughput > 0 {
		r.Measured[CalSteady] = 1 / m.Throughput
	}
	for i, v := range r.Measured {
		if !math.IsNaN(v) && !(v > 0) {
			return r, "", fmt.Errorf("%s: metrics: %s %g; a measured time is > 0 seconds", path, CalMetricNames[i], v)
		}
	}
	// The steps: from the timeline beside it.
	r.Steps = steps
	note := ""
	tl := filepath.Join(filepath.Dir(path), "timeline.json")
	meta, err := readTimelineMeta(tl)
	switch {
	case errors.Is(err, os.ErrNotExist):
		note = fmt.Sprintf("%s: no timeline.json beside it, so its steps are taken to be the plan's %d", path, steps)
	case err != nil:
		return r, "", err
	case meta.Steps > 0:
		r.Steps = meta.Steps
	default:
		note = fmt.Sprintf("%s: %s does not record the steps, so they are taken to be the plan's %d", path, tl, steps)
	}
	if r.Steps != steps {
		return r, "", fmt.Errorf("%s: the run took %d steps (%s), but the plan has %d; calibrate models every run with the plan's sampler: give a plan with %d steps, or leave this run out", path, r.Steps, tl, steps, r.Steps)
	}
	return r, note, nil
}

// readTimelineMeta reads only the meta object of a timeline.json (it
// comes first; the spans after it are not read).
func readTimelineMeta(path string) (timeline.Meta, error) {
	var meta timeline.Meta
	f, err := os.Open(path)
	if err != nil {
		return meta, err
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 1<<30))
	bad := func(err error) error { return fmt.Errorf("%s: not a timeline: %v", path, err) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return meta, bad(fmt.Errorf("want an object"))
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return meta, bad(err)
		}
		if t == "meta" {
			if err := dec.Decode(&meta); err != nil {
				return meta, bad(err)
			}
			return meta, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return meta, bad(err)
		}
	}
	return meta, nil
}

// parseLayoutLabel parses LayoutLabel's form: "pipeline 1×7", "data
// parallel 7×1", "hybrid 2×2".
func parseLayoutLabel(s string) (reps, stages int, ok bool) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(s[i+1:], "×")
	if !found {
		return 0, 0, false
	}
	r, err1 := strconv.Atoi(a)
	st, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || r < 1 || st < 1 || r > 1<<16 || st > 1<<16 {
		return 0, 0, false
	}
	return r, st, true
}
