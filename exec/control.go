package exec

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/vdpp/vdpp/timeline"
)

// The control plane of the process-per-device layout: the coordinator and
// each worker process exchange JSON control messages over one TCP
// connection (rendezvous, start, progress, stop, results). It is the
// layout's, not the link's: micro-batches travel over the plan's link.

// control is a control message; Type says which fields are set.
type control struct {
	Type string `json:"type"` // hello assign ready start stop busy done result

	// hello (worker → coordinator)
	Device   string `json:"device,omitempty"`
	PlanHash string `json:"plan_hash,omitempty"`
	DataAddr string `json:"data_addr,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Token    string `json:"token,omitempty"` // the run's token (EnvWorkerToken)
	Host     string `json:"host,omitempty"`  // the worker's host name (os.Hostname)

	// assign (coordinator → worker)
	Downstream  string `json:"downstream,omitempty"`
	OutDir      string `json:"out_dir,omitempty"`
	OnInterrupt string `json:"on_interrupt,omitempty"`
	Error       string `json:"error,omitempty"` // assign: refused; result: the failure
	// assign, transport nccl: the run's communicator (the coordinator's
	// ncclGetUniqueId), its size, this worker's rank, and the ranks of
	// the stages before and after it (-1: none).
	CommID   []byte `json:"comm_id,omitempty"`
	CommSize int    `json:"comm_size,omitempty"`
	Rank     int    `json:"rank,omitempty"`
	PrevRank int    `json:"prev_rank,omitempty"`
	NextRank int    `json:"next_rank,omitempty"`

	// start (coordinator → worker): the run's start on the host's
	// wall clock, in ns since the Unix epoch
	StartUnixNano int64 `json:"start_unix_nano,omitempty"`

	// stop (coordinator → worker): Mode
	Mode string `json:"mode,omitempty"`

	// busy (worker → coordinator): the micro-batch the worker took; a
	// busy without samples says it handed its micro-batch on (or decoded
	// it) and holds none. done: a sample's outputs are complete.
	Samples []int `json:"samples,omitempty"`

	// result (worker → coordinator); a done message carries the record
	// and output folder of the sample it reports, so that the coordinator
	// knows what was written even if the worker dies before its result.
	Spans   []timeline.Span   `json:"spans,omitempty"`
	Records []timeline.Sample `json:"records,omitempty"`
	Outputs []string          `json:"outputs,omitempty"`
	Link    bool              `json:"link,omitempty"` // the failure is a broken hand-off
}

// controlConn carries JSON control messages between the coordinator and
// a worker; writes are serialised.
type controlConn struct {
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex
}

func newControlConn(c net.Conn) *controlConn {
	return &controlConn{conn: c, r: bufio.NewReader(c)}
}

func (c *controlConn) send(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return writeFrame(c.conn, frameControl, b)
}

func (c *controlConn) recv(m any) error {
	return c.recvMax(m, maxFrame)
}

// recvMax is recv of a message of at most limit bytes.
func (c *controlConn) recvMax(m any, limit uint32) error {
	typ, p, _, err := readFrameMax(c.r, limit)
	if err != nil {
		return err
	}
	if typ != frameControl {
		return frameError(fmt.Sprintf("exec: wire: unexpected frame %q on the control connection", typ))
	}
	return json.Unmarshal(p, m)
}

// tailBuffer keeps the last 4 KiB written to it (a worker's stderr); a
// nil one is empty.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t == nil { // an external worker's: not this process's child
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
