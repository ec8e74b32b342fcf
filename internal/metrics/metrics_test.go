package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServeMetrics(t *testing.T) {
	reg := New()
	reg.Counter(`mco_requests_total{agent=` + Quote("rpcutil") + `}`).Add(3)
	n := uint64(7)
	reg.CounterFunc(`mco_requests_dropped_total{reason="replayed"}`, func() uint64 { return n })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`mco_requests_total{agent="rpcutil"} 3`,
		`mco_requests_dropped_total{reason="replayed"} 7`,
		`mco_build_info{version=`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	resp, err = http.Get("http://" + addr.String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/other: %s", resp.Status)
	}
	if _, err := Serve(ctx, addr.String(), reg, nil); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("a taken port: %v", err)
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("Quote = %s", got)
	}
}
