package ddl

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func configure(t *testing.T) *Action {
	t.Helper()
	return mustLoad(t, "testdata/full.json").Action("configure")
}

func TestConvertArgs(t *testing.T) {
	act := configure(t)
	tests := []struct {
		name string
		args map[string]string
		want map[string]any
		err  string // substring of the error; empty for success
	}{
		{"string", map[string]string{"name": "web"}, map[string]any{"name": "web"}, ""},
		{"booleans", map[string]string{"force": "YES"}, map[string]any{"force": true}, ""},
		{"boolean n", map[string]string{"force": "n"}, map[string]any{"force": false}, ""},
		{"boolean 1", map[string]string{"force": "1"}, map[string]any{"force": true}, ""},
		{"boolean bad", map[string]string{"force": "maybe"}, nil, `input "force": is not a boolean`},
		{"integer", map[string]string{"retries": "-4"}, map[string]any{"retries": int64(-4)}, ""},
		{"integer bad", map[string]string{"retries": "4.5"}, nil, "is not an integer"},
		{"float", map[string]string{"ratio": "2"}, map[string]any{"ratio": 2.0}, ""},
		{"float bad", map[string]string{"ratio": "NaN"}, nil, "is not a number"},
		{"number int", map[string]string{"size": "7"}, map[string]any{"size": int64(7)}, ""},
		{"number float", map[string]string{"size": "7.25"}, map[string]any{"size": 7.25}, ""},
		{"hash", map[string]string{"labels": `{"a":1}`}, map[string]any{"labels": map[string]any{"a": 1.0}}, ""},
		{"hash not object", map[string]string{"labels": `[1]`}, nil, "must be a JSON object"},
		{"hash bad json", map[string]string{"labels": `{a}`}, nil, "is not valid JSON"},
		{"array", map[string]string{"hosts": `["x"]`}, map[string]any{"hosts": []any{"x"}}, ""},
		{"array not array", map[string]string{"hosts": `"x"`}, nil, "must be a JSON array"},
		{"list", map[string]string{"mode": "hard"}, map[string]any{"mode": "hard"}, ""},
		{"list bad", map[string]string{"mode": "medium"}, nil, "must be one of: soft, hard"},
		{"unknown", map[string]string{"colour": "red"}, nil, `input "colour": unknown input for action configure; valid inputs: name, comment, mode`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := act.ConvertArgs(tt.args)
			if tt.err != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an *InputError containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateInputs(t *testing.T) {
	act := configure(t)
	defaults := map[string]any{
		"comment": "none", "mode": "soft", "force": false, "retries": int64(3), "ratio": 0.5,
		"size": int64(10), "labels": map[string]any{"team": "ops"}, "hosts": []any{"a", "b"},
	}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{"name": "abc"}
		for k, v := range defaults {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		data    map[string]any
		want    map[string]any
		missing bool   // want InputError.Missing
		err     string // substring of the error; empty for success
	}{
		{"defaults applied", map[string]any{"name": "abc"}, with(nil), false, ""},
		{"null counts as absent", map[string]any{"name": "abc", "retries": nil}, with(nil), false, ""},
		{"missing required", map[string]any{"comment": "x"}, nil, true, `missing required input "name"`},
		{"required null", map[string]any{"name": nil}, nil, true, "missing"},
		{"integral float64 from JSON", map[string]any{"name": "abc", "retries": 5.0}, with(map[string]any{"retries": int64(5)}), false, ""},
		{"json.Number", map[string]any{"name": "abc", "retries": json.Number("6"), "size": json.Number("1.5")}, with(map[string]any{"retries": int64(6), "size": 1.5}), false, ""},
		{"Go int", map[string]any{"name": "abc", "retries": 7}, with(map[string]any{"retries": int64(7)}), false, ""},
		{"fractional integer", map[string]any{"name": "abc", "retries": 5.5}, nil, false, "not a fraction"},
		{"integer as string", map[string]any{"name": "abc", "retries": "5"}, nil, false, "must be an integer, not a string"},
		{"float accepts int", map[string]any{"name": "abc", "ratio": 2}, with(map[string]any{"ratio": 2.0}), false, ""},
		{"number keeps float", map[string]any{"name": "abc", "size": 2.5}, with(map[string]any{"size": 2.5}), false, ""},
		{"number not string", map[string]any{"name": "abc", "size": "big"}, nil, false, "must be a finite number"},
		{"wrong type string", map[string]any{"name": 12.0}, nil, false, `input "name": must be a string, not a number`},
		{"wrong type bool", map[string]any{"name": "abc", "force": "true"}, nil, false, "must be a boolean"},
		{"over maxlength", map[string]any{"name": strings.Repeat("a", 21)}, nil, false, "longer than 20 characters"},
		{"maxlength counts characters", map[string]any{"name": "abc", "token": strings.Repeat("é", 64)}, with(map[string]any{"token": strings.Repeat("é", 64)}), false, ""},
		{"regex fails", map[string]any{"name": "Abc"}, nil, false, "does not match"},
		{"maxlength 0 still validates", map[string]any{"name": "abc", "comment": "a; rm -rf /"}, nil, false, "not shell safe"},
		{"maxlength 0 is unlimited", map[string]any{"name": "abc", "comment": strings.Repeat("x", 10000)}, with(map[string]any{"comment": strings.Repeat("x", 10000)}), false, ""},
		{"ip validator", map[string]any{"name": "abc", "address": "300.1.1.1"}, nil, false, "is not an IP address"},
		{"ip validator ok", map[string]any{"name": "abc", "address": "::1"}, with(map[string]any{"address": "::1"}), false, ""},
		{"list", map[string]any{"name": "abc", "mode": "hard"}, with(map[string]any{"mode": "hard"}), false, ""},
		{"list not member", map[string]any{"name": "abc", "mode": "x"}, nil, false, "must be one of"},
		{"hash", map[string]any{"name": "abc", "labels": map[string]string{"a": "b"}}, with(map[string]any{"labels": map[string]string{"a": "b"}}), false, ""},
		{"hash wrong", map[string]any{"name": "abc", "labels": []any{}}, nil, false, "must be a hash"},
		{"array of strings", map[string]any{"name": "abc", "hosts": []string{"z"}}, with(map[string]any{"hosts": []string{"z"}}), false, ""},
		{"array wrong", map[string]any{"name": "abc", "hosts": "z"}, nil, false, "must be an array"},
		{"unknown input", map[string]any{"name": "abc", "zzz": 1}, nil, false, `input "zzz": unknown input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := act.ValidateInputs(tt.data)
			if tt.err != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an *InputError containing %q", err, tt.err)
				}
				if ie.Missing != tt.missing {
					t.Errorf("Missing = %v, want %v", ie.Missing, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Extra lets the program hosting an action accept undeclared inputs, each
// through its own check; without it they stay refused.
func TestValidateInputsExtra(t *testing.T) {
	act := configure(t)
	act.Extra = func(name string, v any) (any, error) {
		s, ok := v.(string)
		if !ok || name == "bad" {
			return nil, errors.New("not a property")
		}
		return strings.ToUpper(s), nil
	}
	got, err := act.ValidateInputs(map[string]any{"name": "abc", "ensure": "present", "owner": "root"})
	if err != nil || got["ensure"] != "PRESENT" || got["owner"] != "ROOT" || got["name"] != "abc" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, data := range []map[string]any{{"name": "abc", "bad": "x"}, {"name": "abc", "ensure": 1.0}} {
		var ie *InputError
		if _, err := act.ValidateInputs(data); !errors.As(err, &ie) || !strings.Contains(err.Error(), "not a property") {
			t.Fatalf("%v: got %v", data, err)
		}
	}
	// Declared inputs are still checked by the DDL, not by Extra.
	if _, err := act.ValidateInputs(map[string]any{"name": "Abc"}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("declared input: %v", err)
	}
}

func TestValidateInputsDoesNotModifyCaller(t *testing.T) {
	act := configure(t)
	data := map[string]any{"name": "abc", "retries": 5.0}
	if _, err := act.ValidateInputs(data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "abc", "retries": 5.0}, data); diff != "" {
		t.Errorf("caller's map modified (-want +got):\n%s", diff)
	}
}

func TestSecretValueNotInErrors(t *testing.T) {
	act := configure(t)
	secret := "hunter2-" + strings.Repeat("s", 64)
	_, err := act.ValidateInputs(map[string]any{"name": "abc", "token": secret})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v: want an error that does not quote the value", err)
	}
}

func TestHandBuiltActionFailsClosed(t *testing.T) {
	act := &Action{Name: "x", Input: map[string]*Input{"s": {Type: TypeString, Validation: "shellsafe"}}}
	if _, err := act.ValidateInputs(map[string]any{"s": "ok"}); err == nil || !strings.Contains(err.Error(), "not compiled") {
		t.Fatalf("got %v, want a not-compiled error", err)
	}
}

func TestNamedValidators(t *testing.T) {
	tests := []struct {
		validator string
		good, bad []string
	}{
		{"shellsafe", []string{"hello world", "a&b", "x=1"}, []string{"a;b", "$(id)", "`id`", "a|b", "a && b", "a>b", "a<b", "a\nb"}},
		{"ipv4address", []string{"192.0.2.1"}, []string{"::1", "192.0.2.256", "host", "192.0.2.1/24"}},
		{"ipv6address", []string{"::1", "2001:db8::1"}, []string{"192.0.2.1", "fe80::1%eth0", ":::"}},
		{"ipaddress", []string{"192.0.2.1", "2001:db8::1"}, []string{"", "example.com"}},
		{"service_name", []string{"nginx", "getty@tty1.service", "my-svc_2:x"}, []string{"", "a b", "a;b", "a/b"}},
		{"package_name", []string{"openssl", "libstdc++6", "libc6:amd64", "python3.11"}, []string{"", "a b", "a;b", "a/b"}},
		{"puppet_variable", []string{"production", "feature_x"}, []string{"", "a-b", "a b"}},
		{"puppet_tags", []string{"apache", "apache::mod,ntp", "a::b::c"}, []string{"", "a,", "a:b", "a b", "a;b"}},
		{"puppet_server_address", []string{"puppet", "puppet.example.net:8140", "192.0.2.1:8140"}, []string{"", "-bad", "host:port", "a b", "host:123456"}},
	}
	for _, tt := range tests {
		t.Run(tt.validator, func(t *testing.T) {
			check, err := compileValidation(tt.validator)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.good {
				if err := check(s); err != nil {
					t.Errorf("%q: %v", s, err)
				}
			}
			for _, s := range tt.bad {
				if err := check(s); err == nil {
					t.Errorf("%q accepted", s)
				}
			}
		})
	}
}
