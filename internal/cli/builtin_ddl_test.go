package cli

import (
	"strings"
	"testing"

	"github.com/marionette/mco/ddl"
)

// TestBuiltinDDLsLoadAndRender: the DDLs compiled into the binary parse
// strictly and render with mco plugin doc.
func TestBuiltinDDLsLoadAndRender(t *testing.T) {
	for name, load := range builtinDDLs {
		d, err := load()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d.Metadata.Name != name {
			t.Errorf("%s: metadata.name is %q", name, d.Metadata.Name)
		}
		doc := ddl.Doc(d)
		for _, act := range d.ActionNames() {
			if !strings.Contains(doc, act) {
				t.Errorf("%s: doc does not mention action %s", name, act)
			}
		}
	}
}
