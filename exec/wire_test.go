package exec

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vdpp/vdpp/models"
)

// TestBufferedReceiverStopsOnCancel: a buffered receiver whose stage no
// longer takes micro-batches (it failed, or the run was abandoned) while its
// queue is full must not leave its reading goroutine blocked once the run
// is cancelled (synctest fails the test on a goroutine left blocked).
func TestBufferedReceiverStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		ctx, cancel := context.WithCancel(context.Background())
		r := newTCPReceiver(ctx, b, false, clock{start: time.Now()}, nil)
		frame := encodeBatch(&batch{items: []*item{{id: 7, state: &models.State{X: []float32{1, 2}}}}})
		sent := make(chan int, 1)
		go func() {
			n := 0
			for writeFrame(a, frameBatch, frame) == nil {
				n++
			}
			sent <- n
		}()
		synctest.Wait() // the queue is full, the sender blocked
		if got, _, err := r.next(ctx); err != nil || got.items[0].id != 7 {
			t.Fatalf("next: %v, %v", got, err)
		}
		synctest.Wait()
		cancel()
		if n := <-sent; n <= cap(r.queue) {
			t.Errorf("the sender wrote %d frames before the cancel, want more than the queue holds (%d)", n, cap(r.queue))
		}
	})
}
