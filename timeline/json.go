package timeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vdpp/vdpp/internal/atomicfile"
)

// Write encodes t as JSON on w. The layout is stable and line oriented:
// the metadata first, then one span per line, then one sample per line, so
// that two timelines diff well and the same timeline always gives the same
// bytes.
func Write(w io.Writer, t *Timeline) error {
	if t == nil {
		return errors.New("timeline: write: nil timeline")
	}
	bw := bufio.NewWriter(w)
	meta, err := json.MarshalIndent(t.Meta, "  ", "  ")
	if err != nil {
		return fmt.Errorf("timeline: write meta: %w", err)
	}
	bw.WriteString("{\n  \"meta\": ")
	bw.Write(meta)
	bw.WriteString(",\n  \"spans\": [")
	for i := range t.Spans {
		b, err := json.Marshal(&t.Spans[i])
		if err != nil {
			return fmt.Errorf("timeline: write span %d: %w", i, err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	if len(t.Spans) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("],\n  \"samples\": [")
	for i := range t.Samples {
		b, err := json.Marshal(&t.Samples[i])
		if err != nil {
			return fmt.Errorf("timeline: write sample %d: %w", i, err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	if len(t.Samples) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("timeline: write: %w", err)
	}
	return nil
}

// WriteFile writes t as JSON to path atomically: it writes a temporary file
// in the same directory and renames it over path, so a reader never sees a
// half-written timeline.
func WriteFile(path string, t *Timeline) error {
	var buf bytes.Buffer
	if err := Write(&buf, t); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes()); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}

// Read decodes a timeline from r and checks that it is well formed (see
// Check). Unknown fields are errors.
func Read(r io.Reader) (*Timeline, error) {
	return read(r, "input", "timeline: read: ")
}

// wantTimeline is what an error about a file that is not a timeline says
// the file should be.
const wantTimeline = "want a timeline.json written by vdsim run or vdexec run"

func read(r io.Reader, name, prefix string) (*Timeline, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var t Timeline
	if err := dec.Decode(&t); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%s is empty; %s", name, wantTimeline)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("%sthe JSON is cut short (%v): was %s written completely? %s", prefix, err, name, wantTimeline)
		case errors.As(err, &syn):
			return nil, fmt.Errorf("%snot JSON at byte %d: %w; %s", prefix, syn.Offset, err, wantTimeline)
		case errors.As(err, &typ) && typ.Field != "" && strings.HasPrefix(typ.Value, "number"):
			// A timeline's field with a number it cannot hold (1e30 or 1.5 ns).
			return nil, fmt.Errorf("%sfield %s at byte %d: a number that is not a whole %s (times are whole nanoseconds, within int64); the file was changed or not written by vdpp",
				prefix, typ.Field, typ.Offset, typ.Type)
		case errors.As(err, &typ), strings.Contains(err.Error(), "unknown field"):
			return nil, fmt.Errorf("%s%w: not a timeline (%s; metrics.json and trace.json are not timelines)", prefix, err, wantTimeline)
		}
		return nil, fmt.Errorf("%s%w", prefix, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%sunexpected data after the timeline object", prefix)
	}
	if err := t.check(prefix); err != nil {
		return nil, err
	}
	return &t, nil
}

// ReadFile reads and checks the timeline stored at path. Its errors name
// the file.
func ReadFile(path string) (*Timeline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	return read(bufio.NewReader(f), path, path+": ")
}
