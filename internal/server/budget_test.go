package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/natstest"
)

// slowData blocks every query until its context ends, counting the calls.
type slowData struct{ calls atomic.Int64 }

func (d *slowData) Names() []string { return []string{"slow"} }

func (d *slowData) Query(ctx context.Context, _, _ string) (map[string]any, error) {
	d.calls.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestDataBudgetBoundsFilters: a filter of slow data calls is cut off by the
// request's shared budget, selects nothing (fail closed), and the node goes
// on serving.
func TestDataBudgetBoundsFilters(t *testing.T) {
	p := newTestPKI(t)
	slow := &slowData{}
	n := newNode(t, p, natstest.Start(t), func(o *Options) {
		o.Data = slow
		o.DataBudget = 50 * time.Millisecond
	})
	e, err := filter.ParseCompound("fstat('/a') or fstat('/b') or fstat('/c')")
	if err != nil {
		t.Fatal(err)
	}
	req := newRequest()
	req.Filter = &filter.Filter{Compound: []*filter.Expr{e}}
	n.s.Handle(signed(t, p.alice, req))
	n.s.wg.Wait() // a filter with data calls is decided off the delivery goroutine
	if got := n.s.Stats().Filtered.Load(); got != 1 {
		t.Fatalf("filtered = %d, want 1: a filter whose data calls ran out of time must not match", got)
	}
	if calls := slow.calls.Load(); calls != 1 {
		t.Fatalf("%d data calls ran; after the budget is spent no further call may start", calls)
	}
	n.stillServes()
}
