package main

import "testing"

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                             "1.2.3",
		"v1.2.3-rc.1":                        "1.2.3~rc.1",
		"v0.0.0-20261202011634-8b7fddac6da1": "0.0.0~20261202011634.8b7fddac6da1",
		"v0.0.0-20261202011634-8b7fddac6da1+dirty": "0.0.0~20261202011634.8b7fddac6da1~dirty",
		"(devel)": "0.0.0~devel",
		"":        "0.0.0~devel",
	} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
