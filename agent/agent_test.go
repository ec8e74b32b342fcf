package agent

import (
	"testing"

	"github.com/marionette/mco/ddl"
)

func TestConfig(t *testing.T) {
	d, err := ddl.Parse("x.json", []byte(`{"metadata": {"name": "x", "description": "d", "author": "a", "license": "l",
		"version": "1", "url": "u", "timeout": 1}, "actions": [{"action": "run", "input": {}, "output": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a := New(d)
	if _, ok := a.Config("command"); ok {
		t.Error("a setting before SetConfig")
	}
	a.SetConfig(map[string]string{"command": "puppet agent --onetime"})
	if v, ok := a.Config("command"); !ok || v != "puppet agent --onetime" {
		t.Errorf("Config(command) = %q, %v", v, ok)
	}
	if _, ok := a.Config("other"); ok {
		t.Error("an unset key is reported set")
	}
}
