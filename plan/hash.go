package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Hash identifies the plan's content: everything that decides what runs,
// the resolved layout included (not the file it came from, nor its cost
// profile). Processes that run parts of one plan (the executor's
// coordinator and its workers) must agree on it.
func (p *Plan) Hash() string {
	v := struct {
		Name      string
		Model     Model
		Sampler   Sampler
		Devices   Devices
		Layout    Layout
		Transport Transport
		Workload  Workload
		Pipelines []Pipeline
	}{p.Name, p.Model, p.Sampler, p.Devices, p.Layout, p.Transport, p.Workload, p.Pipelines}
	b, _ := json.Marshal(v) // plain data: cannot fail
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
