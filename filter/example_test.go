package filter_test

import (
	"context"
	"fmt"
	"log"

	"github.com/marionette/mco/filter"
)

// A filter combines the -I, -F, -C, -A and -S parts; a node is selected when
// every part matches. StaticNode stands in for a node here.
func ExampleFilter_Match() {
	web := &filter.StaticNode{
		Name:       "web1.example.net",
		FactValues: map[string]any{"role": "web", "os": map[string]any{"family": "Debian", "release": map[string]any{"major": "12"}}},
		ClassNames: []string{"role::web"},
		AgentNames: []string{"rpcutil", "service"},
	}
	db := &filter.StaticNode{Name: "db1.example.net", FactValues: map[string]any{"role": "db"}}

	major, err := filter.ParseFact("os.release.major>=12")
	if err != nil {
		log.Fatal(err)
	}
	expr, err := filter.ParseCompound(`role=web and not role=db`)
	if err != nil {
		log.Fatal(err)
	}
	f := &filter.Filter{
		Identity: []string{"/^web/"},
		Fact:     []filter.FactFilter{major},
		Agent:    []string{"service"},
		Compound: []*filter.Expr{expr},
	}
	fmt.Println(web.Identity(), f.Match(context.Background(), web))
	fmt.Println(db.Identity(), f.Match(context.Background(), db))
	// Output:
	// web1.example.net true
	// db1.example.net false
}
