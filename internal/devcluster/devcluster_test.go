package devcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/devcluster"
	"github.com/marionette/mco/protocol"
)

func TestClusterPing(t *testing.T) {
	ctx := context.Background()
	c, err := devcluster.Start(ctx, devcluster.Options{Dir: t.TempDir(), Nodes: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := client.ConfigFromFile(c.ClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	nodes, err := cl.Discover(ctx, client.DiscoverRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 6 {
		t.Fatalf("discovered %v, want 6 nodes", nodes)
	}
	nodes, err = cl.Discover(ctx, client.DiscoverRequest{Filter: &filter.Filter{Identity: []string{"/^web/"}}})
	if err != nil || len(nodes) != 2 {
		t.Fatalf("discovered %v (%v), want web1 and web2", nodes, err)
	}
	var got []client.Result
	stats, err := cl.Call(ctx, client.Request{Agent: "rpcutil", Action: "ping", Targets: []string{"web1.dev", "db1.dev", "ghost.dev"}, Timeout: 2 * time.Second}, func(r client.Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	if stats.OK != 2 || len(stats.NoResponse) != 1 || stats.NoResponse[0] != "ghost.dev" {
		t.Fatalf("stats = %+v", stats)
	}
	for _, r := range got {
		if r.Status != protocol.OK || r.Data["pong"] == nil {
			t.Errorf("reply %+v", r)
		}
	}
}
