package ddl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and exercises a parsed agent:
// bad input must give an error, never a panic. Seeds live in
// testdata/fuzz/FuzzParse; the fixtures are added too.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/fixtures/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse("fuzz.json", data)
		if err != nil {
			if a != nil {
				t.Fatal("agent returned with an error")
			}
			return
		}
		Doc(a)
		for _, act := range a.Actions {
			defaults := act.OutputDefaults()
			act.FormatOutputs(defaults)
			act.Summarize([]map[string]any{defaults, defaults})
			args := map[string]string{}
			for _, name := range act.InputNames() {
				args[name] = "1"
			}
			if conv, err := act.ConvertArgs(args); err == nil {
				_, _ = act.ValidateInputs(conv)
			}
			_, _ = act.ValidateInputs(map[string]any{})
		}
	})
}
