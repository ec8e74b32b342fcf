package ddl_test

import (
	"fmt"
	"log"

	"github.com/marionette/mco/ddl"
)

// A DDL describes an agent's actions and their inputs; a node checks every
// request against it before the action runs, and clients validate before
// sending.
func Example() {
	a, err := ddl.Parse("greeter.json", []byte(`{
  "metadata": {"name": "greeter", "description": "says hello", "author": "example",
               "license": "Apache-2.0", "version": "1.0.0", "url": "https://example.net", "timeout": 5},
  "actions": [
    {"action": "hello", "description": "greets someone",
     "input": {"name": {"prompt": "Name", "description": "who to greet", "type": "string",
                        "optional": false, "validation": "^[a-z]+$", "maxlength": 20}},
     "output": {"greeting": {"description": "the greeting", "display_as": "Greeting"}}}
  ]
}`))
	if err != nil {
		log.Fatal(err)
	}
	hello := a.Action("hello")
	fmt.Println(a.Metadata.Name, a.ActionNames())
	if _, err := hello.ValidateInputs(map[string]any{"name": "ada"}); err == nil {
		fmt.Println("name=ada: valid")
	}
	if _, err := hello.ValidateInputs(map[string]any{"name": "Ada!"}); err != nil {
		fmt.Println("name=Ada!: refused")
	}
	// Output:
	// greeter [hello]
	// name=ada: valid
	// name=Ada!: refused
}
