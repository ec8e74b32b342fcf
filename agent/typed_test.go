package agent_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/protocol"
)

type sumIn struct {
	A int `json:"a"`
	B int `json:"b"`
}

type sumOut struct {
	Sum int `json:"sum"`
}

// TestTyped: inputs decode into the struct, outputs encode into the reply,
// an error fails the reply with its message, and inputs of the wrong type
// are refused as invalid data before the function runs.
func TestTyped(t *testing.T) {
	t.Parallel()
	ran := 0
	h := agent.Typed(func(_ context.Context, _ *agent.Request, in *sumIn) (*sumOut, error) {
		ran++
		if in.A < 0 {
			return nil, errors.New("negative")
		}
		return &sumOut{Sum: in.A + in.B}, nil
	})
	call := func(data map[string]any) *agent.Reply {
		rep := &agent.Reply{Data: map[string]any{}}
		h(context.Background(), &agent.Request{Data: data}, rep)
		return rep
	}
	if rep := call(map[string]any{"a": 2, "b": 3}); rep.Status != protocol.OK || fmt.Sprint(rep.Data["sum"]) != "5" {
		t.Errorf("2+3: status %v, data %v", rep.Status, rep.Data)
	}
	if rep := call(map[string]any{"a": -1}); rep.Status != protocol.Aborted || rep.Message != "negative" {
		t.Errorf("error: status %v, message %q", rep.Status, rep.Message)
	}
	before := ran
	if rep := call(map[string]any{"a": "two"}); rep.Status != protocol.InvalidData || ran != before {
		t.Errorf("wrong input type: status %v (ran %d times more)", rep.Status, ran-before)
	}
	if rep := call(nil); rep.Status != protocol.OK || ran != before+1 {
		t.Errorf("no inputs: status %v, data %v", rep.Status, rep.Data)
	}
}
