package server

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/protocol"
)

// barrierData answers a query only once want queries are in progress at the
// same time, or fails it after a while.
type barrierData struct {
	want    int
	mu      sync.Mutex
	waiting int
	all     chan struct{}
}

func (d *barrierData) Names() []string { return []string{"fstat"} }

func (d *barrierData) Query(ctx context.Context, _, _ string) (map[string]any, error) {
	d.mu.Lock()
	d.waiting++
	if d.waiting == d.want {
		close(d.all)
	}
	d.mu.Unlock()
	select {
	case <-d.all:
		return map[string]any{"size": 1}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestConcurrencyHandlesRequestsTogether: with Concurrency 3, three requests
// delivered on the node's subscription are in its pipeline at the same time
// (each one's filter waits until all three have reached it), so all three
// match and are answered. Handled one at a time, each would wait alone and
// run out of its data budget.
func TestConcurrencyHandlesRequestsTogether(t *testing.T) {
	p := newTestPKI(t)
	url := natstest.Start(t)
	data := &barrierData{want: 3, all: make(chan struct{})}
	n := newNode(t, p, url, func(o *Options) {
		o.Data = data
		o.Concurrency = 3
		o.DataBudget = 10 * time.Second
	})
	e, err := filter.ParseCompound("fstat('/a').size = 1")
	if err != nil {
		t.Fatal(err)
	}
	pub := natstest.Connect(t, url)
	var ids []string
	for range 3 {
		req := newRequest()
		req.Filter = &filter.Filter{Compound: []*filter.Expr{e}}
		ids = append(ids, req.ID)
		if err := pub.Publish(protocol.NodeSubject(testCollective, nodeName), signed(t, p.alice, req)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(got) < 3 {
		select {
		case m := <-n.replies:
			got[replyID(t, m)] = true
		case <-deadline:
			t.Fatalf("%d of 3 replies; stats %v", len(got), n.s.Stats().Snapshot())
		}
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("no reply to %s", id)
		}
	}
}

func replyID(t *testing.T, m *nats.Msg) string {
	t.Helper()
	var env protocol.SecureReply
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatal(err)
	}
	var rep protocol.Reply
	if err := json.Unmarshal(env.Reply, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != protocol.OK {
		t.Fatalf("reply %s: status %d %q", rep.RequestID, rep.Status, rep.Message)
	}
	return rep.RequestID
}
