package broker

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/marionette/mco/internal/metrics"
	"github.com/marionette/mco/internal/pki"
)

// counters are what the broker counts itself; message and byte counts come
// from the NATS server's own statistics.
type counters struct {
	certs        sync.Map // certKey -> connCert of every certificate that connected
	refused      atomic.Uint64
	revokedDrops atomic.Uint64
}

// RegisterMetrics exposes the broker's metrics in reg: connections by role,
// messages and bytes in and out, slow consumers, refused connections and
// connections dropped because their certificate was revoked.
func (b *Broker) RegisterMetrics(reg *metrics.Registry) {
	reg.CounterFunc("mco_broker_connections_refused_total", b.counters.refused.Load)
	reg.CounterFunc("mco_broker_revoked_connections_dropped_total", b.counters.revokedDrops.Load)
	reg.Writer(func(w io.Writer) {
		v, err := b.ns.Varz(nil)
		if err != nil {
			return
		}
		vm.WriteCounterUint64(w, "mco_broker_messages_received_total", uint64(v.InMsgs))
		vm.WriteCounterUint64(w, "mco_broker_messages_sent_total", uint64(v.OutMsgs))
		vm.WriteCounterUint64(w, "mco_broker_bytes_received_total", uint64(v.InBytes))
		vm.WriteCounterUint64(w, "mco_broker_bytes_sent_total", uint64(v.OutBytes))
		vm.WriteCounterUint64(w, "mco_broker_slow_consumers_total", uint64(v.SlowConsumers))
		vm.WriteGaugeUint64(w, "mco_broker_routes", uint64(v.Routes))
	})
	reg.Writer(func(w io.Writer) {
		byRole := b.connectionsByRole()
		for _, role := range []string{string(pki.RoleNode), string(pki.RoleClient), "unknown"} {
			vm.WriteGaugeUint64(w, fmt.Sprintf("mco_broker_connections{role=%s}", metrics.Quote(role)), uint64(byRole[role]))
		}
	})
}

// connectionsByRole counts the open client connections by the role of
// their certificate ("unknown" for an insecure broker's).
func (b *Broker) connectionsByRole() map[string]int {
	out := map[string]int{}
	for offset := 0; ; {
		conns, err := b.ns.Connz(&server.ConnzOptions{Username: true, Offset: offset, Limit: 1024})
		if err != nil || len(conns.Conns) == 0 {
			return out
		}
		for _, ci := range conns.Conns {
			role := "unknown"
			if cc, ok := b.counters.connCertOf(ci); ok {
				role = string(cc.role)
			}
			out[role]++
		}
		offset += len(conns.Conns)
	}
}
