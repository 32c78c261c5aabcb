package exec

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/plan"
)

// SampleRecord is the JSON written next to each sample's frames.
type SampleRecord struct {
	Sample       int           `json:"sample"`
	Seed         uint64        `json:"seed"`
	Pipeline     int           `json:"pipeline"`
	Conditioning string        `json:"conditioning"`
	Frames       int           `json:"frames"`
	Width        int           `json:"width"`
	Height       int           `json:"height"`
	Release      int64         `json:"release_ns"`
	Done         int64         `json:"done_ns"`
	Stages       []StageTiming `json:"stages"`
	// LatentSHA256 is the SHA-256 of the final latent [F, C, h, w] as
	// little-endian float32: equal for equal outputs, whatever the layout.
	LatentSHA256 string `json:"latent_sha256"`
}

// SampleDir is the name of sample id's output directory inside OutDir.
func SampleDir(id int) string { return fmt.Sprintf("sample_%05d", id) }

// outputs writes finished samples on its own goroutine, so that writing
// files does not stall the decode stage (up to maxQueued samples behind),
// and reports progress.
type outputs struct {
	p        *plan.Plan
	opts     Options
	start    time.Time
	total    int
	jobs     chan outJob
	wg       sync.WaitGroup
	mu       sync.Mutex
	finished outResult
	// written, if set, is called (on the writer's goroutine) after each
	// sample's write, with its folder ("" when none is written).
	written func(rec SampleRecord, dir string, err error)
}

type outJob struct {
	rec   SampleRecord
	video *models.Video // nil when no outputs are written
}

type outResult struct {
	dirs []string
	done int
	err  error
}

func newOutputs(p *plan.Plan, opts Options, start time.Time, total int) *outputs {
	o := &outputs{p: p, opts: opts, start: start, total: total, jobs: make(chan outJob, min(total, maxQueued)+1)}
	o.wg.Add(1)
	go o.loop()
	return o
}

// encode encodes the n decoded clips in frames [n, F, 3, H, W] as videos;
// nothing when the run writes no outputs.
func (o *outputs) encode(frames []float32, n int) ([]*models.Video, error) {
	if o.opts.OutDir == "" {
		return nil, nil
	}
	m := o.p.Model
	per := m.Frames * 3 * 64 * m.Latent.Height * m.Latent.Width
	videos := make([]*models.Video, n)
	for i := range n {
		v, err := models.EncodeVideo(frames[i*per:(i+1)*per], m.Frames, 8*m.Latent.Height, 8*m.Latent.Width, gifDelayCS)
		if err != nil {
			return nil, err
		}
		videos[i] = v
	}
	return videos, nil
}

// gifDelayCS is the GIF frame delay, in hundredths of a second.
const gifDelayCS = 10

// finish hands the micro-batch b and its encoded videos to the writer.
func (o *outputs) finish(b *batch, videos []*models.Video, done int64) {
	m := o.p.Model
	for i, it := range b.items {
		rec := SampleRecord{
			Sample: it.id, Seed: o.p.Workload.Seed, Pipeline: it.id % max(len(o.p.Pipelines), 1),
			Conditioning: o.opts.Conditioning(it.id), Frames: m.Frames,
			Width: 8 * m.Latent.Width, Height: 8 * m.Latent.Height,
			Release: it.release, Done: done, Stages: it.timings, LatentSHA256: latentHash(it.state.X),
		}
		var v *models.Video
		if i < len(videos) {
			v = videos[i]
		}
		o.jobs <- outJob{rec: rec, video: v}
	}
}

func (o *outputs) loop() {
	defer o.wg.Done()
	for j := range o.jobs {
		var dir string
		var err error
		if o.opts.OutDir != "" && j.video != nil {
			dir, err = writeSample(o.opts.OutDir, j.rec, j.video)
		}
		o.mu.Lock()
		if err != nil && o.finished.err == nil {
			o.finished.err = err
		}
		if dir != "" {
			o.finished.dirs = append(o.finished.dirs, dir)
		}
		o.finished.done++
		done := o.finished.done
		o.mu.Unlock()
		if o.written != nil {
			o.written(j.rec, dir, err)
		}
		if o.opts.Progress != nil {
			el := time.Since(o.start)
			o.opts.Progress(ProgressEvent{Done: done, Total: o.total, Elapsed: el, Throughput: float64(done) / el.Seconds()})
		}
	}
}

// wait waits for every queued output to be written.
func (o *outputs) wait() outResult {
	close(o.jobs)
	o.wg.Wait()
	return o.finished
}

// latentHash is the SHA-256 of x as little-endian float32.
func latentHash(x []float32) string {
	h := sha256.New()
	var b [4]byte
	for _, v := range x {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeSample writes a sample's GIF, PNG frames and JSON into a temporary
// directory inside dir and renames it into place, so a reader (or an
// interrupted run) never sees half a sample.
func writeSample(dir string, rec SampleRecord, video *models.Video) (string, error) {
	final := filepath.Join(dir, SampleDir(rec.Sample))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("exec: outputs: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "."+SampleDir(rec.Sample)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("exec: outputs: %w", err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("exec: outputs: sample %d: %w", rec.Sample, err)
	}
	if _, err := video.WritePNGs(tmp, "frame_"); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "video.gif"), video.GIF, 0o644); err != nil {
		return fail(err)
	}
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "sample.json"), append(js, '\n'), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(final); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	return final, nil
}
