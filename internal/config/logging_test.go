package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLoggingKeys: log.level, log.format and log.file are accepted by the
// server and the broker, relative files resolve against the config's
// directory, and bad values name the file and line.
func TestLoggingKeys(t *testing.T) {
	body := tlsLines + "log.level = debug\nlog.format = json\nlog.file = logs/server.log\n"
	p := writeConf(t, body)
	s, err := LoadServer(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.LogLevel != "debug" || s.LogFormat != "json" || s.LogFile != filepath.Join(filepath.Dir(p), "logs", "server.log") {
		t.Errorf("server logging = %+v", s.Observability)
	}
	b, err := LoadBroker(writeConf(t, tlsLines+"log.format = text\nlog.level = warn\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b.LogLevel != "warn" || b.LogFormat != "text" || b.LogFile != "" {
		t.Errorf("broker logging = %+v", b.Observability)
	}
	for _, tt := range []struct{ line, want string }{
		{"log.level = loud", `log.level: "loud": use debug, info, warn or error`},
		{"log.format = xml", `log.format: "xml": use text or json`},
	} {
		p := writeConf(t, tlsLines+tt.line+"\n")
		if _, err := LoadServer(p); err == nil || !strings.Contains(err.Error(), p+":4: "+tt.want) {
			t.Errorf("server %s: %v", tt.line, err)
		}
		if _, err := LoadBroker(p); err == nil || !strings.Contains(err.Error(), p+":4: "+tt.want) {
			t.Errorf("broker %s: %v", tt.line, err)
		}
	}
}
