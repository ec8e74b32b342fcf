package agent_test

import (
	"context"
	"fmt"
	"log"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
)

const greeterDDL = `{
  "metadata": {"name": "greeter", "description": "says hello", "author": "example",
               "license": "Apache-2.0", "version": "1.0.0", "url": "https://example.net", "timeout": 5},
  "actions": [
    {"action": "hello", "description": "greets someone",
     "input": {"name": {"prompt": "Name", "description": "who to greet", "type": "string",
                        "optional": false, "validation": "^[a-z]+$", "maxlength": 20}},
     "output": {"greeting": {"description": "the greeting", "display_as": "Greeting"}}}
  ]
}`

// An agent is a DDL plus one handler per action. Typed decodes the
// validated inputs into a struct and encodes the returned struct as outputs.
func Example() {
	d, err := ddl.Parse("greeter.json", []byte(greeterDDL))
	if err != nil {
		log.Fatal(err)
	}
	type helloIn struct {
		Name string `json:"name"`
	}
	type helloOut struct {
		Greeting string `json:"greeting"`
	}
	a := agent.New(d)
	a.Register("hello", agent.Typed(func(_ context.Context, _ *agent.Request, in *helloIn) (*helloOut, error) {
		return &helloOut{Greeting: "hello " + in.Name}, nil
	}))

	// What a node does with a validated request:
	h, _ := a.Handler("hello")
	rep := &agent.Reply{Data: map[string]any{}}
	h(context.Background(), &agent.Request{Agent: "greeter", Action: "hello", Data: map[string]any{"name": "ada"}}, rep)
	fmt.Println(rep.Status, rep.Data["greeting"])
	// Output: OK hello ada
}
