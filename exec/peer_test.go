package exec

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestWorkerPeerNotCoordinator: a worker whose --rendezvous reached a
// server that is not a vdexec coordinator (here one that answers as an
// HTTP server does) said only "exec: wire: bad frame length 1347703880".
// It says now that the peer is not a coordinator, naming its address.
func TestWorkerPeerNotCoordinator(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Read what the worker sent (its hello), then answer as HTTP.
		c.SetReadDeadline(time.Now().Add(time.Second))
		bufio.NewReader(c).Peek(1)
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		// Keep the connection open until the worker hangs up.
		c.SetReadDeadline(time.Time{})
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	p := tcpPlan("blocking")
	dev := p.Pipelines[0].Stages[0].Device
	f := fakeFactory(fakeModel{})
	err = RunWorker(context.Background(), WorkerConfig{Plan: p, Device: dev, Rendezvous: ln.Addr().String(), Factory: f, Images: fakeImages(p), Timeout: time.Minute})
	want := "the peer at " + ln.Addr().String() + " is not a vdexec coordinator"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"HTTP/"`) {
		t.Errorf("worker against an HTTP server: %v; want %q and the bytes it began with", err, want)
	}
}
