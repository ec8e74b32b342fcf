package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    Amount
		wantErr string
	}{
		{"10", Amount{N: 10}, ""},
		{" 3 ", Amount{N: 3}, ""},
		{"0", Amount{}, ""},
		{"25%", Amount{Percent: 25, IsPercent: true}, ""},
		{"12.5%", Amount{Percent: 12.5, IsPercent: true}, ""},
		{"100%", Amount{Percent: 100, IsPercent: true}, ""},
		{"0%", Amount{IsPercent: true}, ""},
		{"150%", Amount{}, "between 0% and 100%"},
		{"-5%", Amount{}, "between 0% and 100%"},
		{"-1", Amount{}, "negative"},
		{"abc", Amount{}, "not a number"},
		{"", Amount{}, "not a number"},
		{"%", Amount{}, "not a number"},
		{"NaN%", Amount{}, "not a number"},
		{"1.5", Amount{}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAmount(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAmount(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAmount(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAmountOfAndExceeded(t *testing.T) {
	pct := func(p float64) Amount { return Amount{Percent: p, IsPercent: true} }
	ofTests := []struct {
		a     Amount
		total int
		want  int
	}{
		{Amount{N: 2}, 5, 2},
		{Amount{N: 9}, 5, 5},
		{pct(50), 5, 3},  // rounded up
		{pct(10), 5, 1},  // never zero for a non-zero share
		{pct(100), 7, 7}, // everything
		{pct(0), 7, 0},
		{pct(50), 0, 0},
	}
	for _, tt := range ofTests {
		if got := tt.a.Of(tt.total); got != tt.want {
			t.Errorf("%s of %d = %d, want %d", tt.a, tt.total, got, tt.want)
		}
	}
	exTests := []struct {
		a              Amount
		failures, sent int
		want           bool
	}{
		{Amount{N: 0}, 0, 4, false},
		{Amount{N: 0}, 1, 4, true},
		{Amount{N: 2}, 2, 4, false},
		{Amount{N: 2}, 3, 4, true},
		{pct(50), 2, 4, false},
		{pct(50), 3, 4, true},
		{pct(0), 1, 100, true},
	}
	for _, tt := range exTests {
		if got := tt.a.Exceeded(tt.failures, tt.sent); got != tt.want {
			t.Errorf("%s exceeded by %d of %d = %v, want %v", tt.a, tt.failures, tt.sent, got, tt.want)
		}
	}
}

func TestSplitBatches(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	tests := []struct {
		name string
		in   []Batch
		size int
		want []Batch
	}{
		{"by two", []Batch{{Nodes: nodes}}, 2, []Batch{{Nodes: nodes[0:2]}, {Nodes: nodes[2:4]}, {Nodes: nodes[4:5]}}},
		{"size covers all", []Batch{{Nodes: nodes}}, 5, []Batch{{Nodes: nodes}}},
		{"no size", []Batch{{Nodes: nodes}}, 0, []Batch{{Nodes: nodes}}},
		{"groups keep labels", []Batch{{Label: "g=a", Nodes: nodes[:3]}, {Label: "g=b", Nodes: nodes[3:]}}, 2,
			[]Batch{{Label: "g=a", Nodes: nodes[0:2]}, {Label: "g=a", Nodes: nodes[2:3]}, {Label: "g=b", Nodes: nodes[3:5]}}},
		{"empty dropped", []Batch{{Label: "g=a"}, {Label: "g=b", Nodes: nodes[:1]}}, 2, []Batch{{Label: "g=b", Nodes: nodes[:1]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitBatches(tt.in, tt.size); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitBatches = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestGroupByValue(t *testing.T) {
	tests := []struct {
		name   string
		nodes  []string
		values map[string]string
		want   []Batch
	}{
		{"sorted values, missing last",
			[]string{"n1", "n2", "n3", "n4", "n5"},
			map[string]string{"n1": "c", "n2": "a", "n3": "b", "n5": "a"},
			[]Batch{{Label: "hagroup=a", Nodes: []string{"n2", "n5"}}, {Label: "hagroup=b", Nodes: []string{"n3"}},
				{Label: "hagroup=c", Nodes: []string{"n1"}}, {Label: "hagroup=(missing)", Nodes: []string{"n4"}}}},
		{"numbers numerically",
			[]string{"n1", "n2", "n3"},
			map[string]string{"n1": "10", "n2": "9", "n3": "x"},
			[]Batch{{Label: "hagroup=9", Nodes: []string{"n2"}}, {Label: "hagroup=10", Nodes: []string{"n1"}}, {Label: "hagroup=x", Nodes: []string{"n3"}}}},
		{"nobody has it",
			[]string{"n1", "n2"}, nil,
			[]Batch{{Label: "hagroup=(missing)", Nodes: []string{"n1", "n2"}}}},
		{"values of unknown nodes ignored",
			[]string{"n1"}, map[string]string{"n1": "a", "stranger": "b"},
			[]Batch{{Label: "hagroup=a", Nodes: []string{"n1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GroupByValue("hagroup", tt.nodes, tt.values); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GroupByValue = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLimitNodes(t *testing.T) {
	nodes := []string{"e", "a", "d", "c", "b", "f"}
	seeded := func(s uint64) *rand.Rand { return rand.New(rand.NewPCG(s, 0)) }

	if got := LimitNodes(nodes, Amount{}, nil); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f"}) {
		t.Errorf("no limit: %v", got)
	}
	if got := LimitNodes(nodes, Amount{N: 10}, nil); len(got) != 6 {
		t.Errorf("limit above the count: %v", got)
	}
	tests := []struct {
		name  string
		limit Amount
		want  int
	}{
		{"two", Amount{N: 2}, 2},
		{"one", Amount{N: 1}, 1},
		{"half", Amount{Percent: 50, IsPercent: true}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := LimitNodes(nodes, tt.limit, seeded(1))
			// The same seed picks the same nodes whatever their order.
			b := LimitNodes(slices.Sorted(slices.Values(nodes)), tt.limit, seeded(1))
			if len(a) != tt.want || !slices.Equal(a, b) || !slices.IsSorted(a) {
				t.Fatalf("picks %v and %v, want the same %d sorted nodes", a, b, tt.want)
			}
			for _, n := range a {
				if !slices.Contains(nodes, n) {
					t.Fatalf("picked %q, not one of the nodes", n)
				}
			}
			if got := LimitNodes(nodes, tt.limit, nil); len(got) != tt.want {
				t.Errorf("unseeded: %v", got)
			}
		})
	}
}

// fakeSend answers every batch: nodes in fail fail, nodes in silent do not
// answer, the rest reply OK. It records the batches it was given.
type fakeSend struct {
	fail, silent map[string]bool
	sent         [][]string
	errAt        int // 1-based batch that cannot be sent (0: none)
}

func (f *fakeSend) send(_ context.Context, r Request) (*Stats, error) {
	f.sent = append(f.sent, r.Targets)
	if len(f.sent) == f.errAt {
		return nil, errors.New("broker gone")
	}
	s := &Stats{RequestID: fmt.Sprintf("req%d", len(f.sent)), Agent: r.Agent, Action: r.Action, Expected: r.Targets}
	for _, n := range r.Targets {
		switch {
		case f.silent[n]:
			s.NoResponse = append(s.NoResponse, n)
		case f.fail[n]:
			s.Failed++
			s.Responded = append(s.Responded, n)
		default:
			s.OK++
			s.Responded = append(s.Responded, n)
		}
	}
	return s, nil
}

func TestRunBatches(t *testing.T) {
	batches := []Batch{
		{Label: "g=a", Nodes: []string{"a1", "a2"}},
		{Label: "g=b", Nodes: []string{"b1", "b2"}},
		{Label: "g=c", Nodes: []string{"c1"}},
	}
	amount := func(s string) *Amount {
		a, err := ParseAmount(s)
		if err != nil {
			t.Fatal(err)
		}
		return &a
	}
	set := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	tests := []struct {
		name        string
		max         *Amount
		fake        fakeSend
		wantRan     int
		wantNotSent []string
		wantStopped string
		wantErr     bool
		wantOK      int
		wantFailed  int
		wantSilent  []string
	}{
		{name: "all batches", fake: fakeSend{}, wantRan: 3, wantOK: 5},
		{name: "failures without a limit go on", fake: fakeSend{fail: set("a1", "a2")}, wantRan: 3, wantOK: 3, wantFailed: 2},
		{name: "max 0 stops after the first failing batch", max: amount("0"), fake: fakeSend{fail: set("a1")},
			wantRan: 1, wantNotSent: []string{"b1", "b2", "c1"}, wantStopped: "1 of 2 nodes failed", wantOK: 1, wantFailed: 1},
		{name: "silence counts as failure", max: amount("1"), fake: fakeSend{silent: set("a1"), fail: set("b1")},
			wantRan: 2, wantNotSent: []string{"c1"}, wantStopped: "2 of 4 nodes", wantOK: 2, wantFailed: 1, wantSilent: []string{"a1"}},
		{name: "percentage of the nodes sent so far", max: amount("50%"), fake: fakeSend{fail: set("a1", "b1", "c1")},
			wantRan: 3, wantOK: 2, wantFailed: 3},
		{name: "percentage exceeded", max: amount("25%"), fake: fakeSend{fail: set("a1")},
			wantRan: 1, wantNotSent: []string{"b1", "b2", "c1"}, wantStopped: "more than --max-failures 25%", wantOK: 1, wantFailed: 1},
		{name: "the last batch failing stops nothing", max: amount("0"), fake: fakeSend{fail: set("c1")}, wantRan: 3, wantOK: 4, wantFailed: 1},
		{name: "a batch that cannot be sent", fake: fakeSend{errAt: 2},
			wantRan: 1, wantNotSent: []string{"b1", "b2", "c1"}, wantStopped: "batch 2/3: broker gone", wantErr: true, wantOK: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var announced []string
			fake := tt.fake
			bs, err := runBatches(context.Background(), Request{Agent: "rpcutil", Action: "ping"}, BatchPlan{Batches: batches, MaxFailures: tt.max},
				func(b BatchInfo) { announced = append(announced, fmt.Sprintf("%d/%d %s", b.Index, b.Count, b.Label)) }, fake.send)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(bs.Batches) != tt.wantRan {
				t.Fatalf("%d batches ran, want %d (stopped: %q)", len(bs.Batches), tt.wantRan, bs.Stopped)
			}
			if !slices.Equal(bs.NotSent, tt.wantNotSent) {
				t.Errorf("not sent %v, want %v", bs.NotSent, tt.wantNotSent)
			}
			if (tt.wantStopped == "") != (bs.Stopped == "") || !strings.Contains(bs.Stopped, tt.wantStopped) {
				t.Errorf("stopped %q, want %q", bs.Stopped, tt.wantStopped)
			}
			// Each batch is its own request, announced before it is sent.
			for i, b := range bs.Batches {
				if b.Stats.RequestID != fmt.Sprintf("req%d", i+1) || !slices.Equal(fake.sent[i], batches[i].Nodes) {
					t.Errorf("batch %d: request %s to %v", i+1, b.Stats.RequestID, fake.sent[i])
				}
			}
			if len(announced) == 0 || announced[0] != "1/3 g=a" {
				t.Errorf("announced %v", announced)
			}
			tot := bs.Total
			if tot.OK != tt.wantOK || tot.Failed != tt.wantFailed || !slices.Equal(tot.NoResponse, tt.wantSilent) || tot.RequestID != "req1" {
				t.Errorf("total %+v", tot)
			}
			if len(tot.Expected) != bs.Sent() {
				t.Errorf("total expects %v, %d sent", tot.Expected, bs.Sent())
			}
		})
	}
}

func TestRunBatchesRefusesEmptyPlans(t *testing.T) {
	send := (&fakeSend{}).send
	for _, plan := range []BatchPlan{{}, {Batches: []Batch{{Nodes: []string{"a"}}, {}}}} {
		if _, err := runBatches(context.Background(), Request{Agent: "a", Action: "b"}, plan, nil, send); err == nil {
			t.Errorf("plan %+v accepted", plan)
		}
	}
}

func TestRunBatchesStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fake := &fakeSend{}
	plan := BatchPlan{Batches: []Batch{{Nodes: []string{"a"}}, {Nodes: []string{"b"}}}, Sleep: 1 << 40}
	bs, err := runBatches(ctx, Request{Agent: "a", Action: "b"}, plan, func(BatchInfo) { cancel() }, fake.send)
	if !errors.Is(err, context.Canceled) || len(bs.Batches) != 1 || !slices.Equal(bs.NotSent, []string{"b"}) {
		t.Fatalf("err %v, ran %d, not sent %v", err, len(bs.Batches), bs.NotSent)
	}
}
