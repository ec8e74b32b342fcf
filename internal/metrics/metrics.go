// Package metrics serves a process's metrics in the Prometheus text format
// at /metrics (metrics.listen in server.conf and broker.conf). It uses
// github.com/VictoriaMetrics/metrics, a light library (the daemon stays light), with
// one Set per process rather than the library's global default set.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/marionette/mco/internal/buildinfo"
)

// Registry holds one process's metrics.
type Registry struct {
	set *vm.Set
}

// New returns an empty registry with mco_build_info set.
func New() *Registry {
	r := &Registry{set: vm.NewSet()}
	info := buildinfo.Read()
	r.set.NewGauge(fmt.Sprintf(`mco_build_info{version=%s,goversion=%s}`, Quote(info.Short()), Quote(info.GoVersion)), func() float64 { return 1 })
	return r
}

// Counter returns the counter with this name (labels included), creating it.
func (r *Registry) Counter(name string) *vm.Counter { return r.set.GetOrCreateCounter(name) }

// Histogram returns the Prometheus-style histogram with this name.
func (r *Registry) Histogram(name string) *vm.PrometheusHistogram {
	return r.set.GetOrCreatePrometheusHistogram(name)
}

// CounterFunc exposes a counter kept elsewhere (e.g. the server's drop
// counters): read at each scrape, so there is one counting path.
func (r *Registry) CounterFunc(name string, f func() uint64) {
	r.set.RegisterMetricsWriter(func(w io.Writer) { vm.WriteCounterUint64(w, name, f()) })
}

// GaugeFunc exposes a gauge read at each scrape.
func (r *Registry) GaugeFunc(name string, f func() float64) {
	r.set.RegisterMetricsWriter(func(w io.Writer) { vm.WriteGaugeFloat64(w, name, f()) })
}

// Writer adds a callback that writes several lines at each scrape, for
// values that come from one snapshot (the broker's NATS statistics).
func (r *Registry) Writer(f func(w io.Writer)) { r.set.RegisterMetricsWriter(f) }

// WritePrometheus writes every metric, then the process's (CPU, memory,
// file descriptors, Go runtime).
func (r *Registry) WritePrometheus(w io.Writer) {
	r.set.WritePrometheus(w)
	vm.WriteProcessMetrics(w)
}

// ServeHTTP serves /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/metrics" {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WritePrometheus(w)
}

// Serve listens on addr (host:port) and serves /metrics until ctx ends. It
// returns the bound address once listening, so a port 0 can be reported.
func Serve(ctx context.Context, addr string, r *Registry, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return ln.Addr(), nil
}

// labelEscaper escapes what the text format requires in a label value.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Quote renders a label value: quoted and escaped as the text format wants.
func Quote(v string) string {
	return `"` + labelEscaper.Replace(strings.ToValidUTF8(v, "\uFFFD")) + `"`
}
