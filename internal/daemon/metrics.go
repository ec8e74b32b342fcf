package daemon

import (
	"fmt"
	"time"

	"github.com/marionette/mco/internal/metrics"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/server"
	"github.com/marionette/mco/protocol"
)

// RegisterMetrics exposes the node's counters in reg; call it before Run.
// Counters the server already keeps (drops by reason, denials, audit
// failures) are read from it at each scrape rather than counted twice.
func (d *Daemon) RegisterMetrics(reg *metrics.Registry) {
	st := d.node.Stats()
	for _, reason := range server.DropReasons() {
		reg.CounterFunc(fmt.Sprintf(`mco_requests_dropped_total{reason=%s}`, metrics.Quote(reason)), func() uint64 { return uint64(st.Dropped(reason)) })
	}
	// Not logged as drops: a broadcast that does not match this node's
	// filter is normal, but a count of them shows discovery's reach.
	reg.CounterFunc(`mco_requests_dropped_total{reason="filter"}`, func() uint64 { return uint64(st.Filtered.Load()) })
	reg.CounterFunc("mco_messages_received_total", func() uint64 { return uint64(st.Total.Load()) })
	reg.CounterFunc("mco_replies_total", func() uint64 { return uint64(st.Replies.Load()) })
	reg.CounterFunc("mco_reply_publish_failures_total", func() uint64 { return uint64(st.PublishError.Load()) })
	reg.CounterFunc("mco_authorization_denied_total", func() uint64 { return uint64(st.Denied.Load()) })
	reg.CounterFunc("mco_action_timeouts_total", func() uint64 { return uint64(st.Timeouts.Load()) })
	reg.CounterFunc("mco_audit_writes_total", d.auditWrites.Load)
	reg.CounterFunc("mco_audit_write_failures_total", func() uint64 { return uint64(st.AuditErrors.Load()) })
	reg.CounterFunc("mco_fact_reloads_total", func() uint64 { n, _ := d.facts.Reloads(); return n })
	reg.CounterFunc("mco_fact_reload_failures_total", func() uint64 { _, n := d.facts.Reloads(); return n })
	d.metrics = &nodeObserver{reg: reg, node: d.node} // called by Completed
}

// nodeObserver counts requests by agent, action and status, action
// durations, and the runs of external agents.
type nodeObserver struct {
	reg  *metrics.Registry
	node *node.Node
}

// Completed implements server.Observer.
func (o *nodeObserver) Completed(agent, action string, status protocol.StatusCode, d time.Duration) {
	// Agent and action names come from the caller: only names this node
	// hosts become label values, so no caller can grow the series at will.
	a, ok := o.node.Agent(agent)
	if !ok {
		agent, action = "(unknown)", "(unknown)"
	} else if a.DDL.Action(action) == nil {
		action = "(unknown)"
	}
	labels := fmt.Sprintf(`agent=%s,action=%s`, metrics.Quote(agent), metrics.Quote(action))
	o.reg.Counter(fmt.Sprintf(`mco_requests_total{%s,status=%s}`, labels, metrics.Quote(statusName(status)))).Inc()
	if d > 0 {
		o.reg.Histogram(fmt.Sprintf(`mco_action_duration_seconds{%s}`, labels)).Update(d.Seconds())
	}
	if d > 0 && ok && o.node.IsExternal(agent) {
		o.reg.Counter(fmt.Sprintf(`mco_external_agent_runs_total{agent=%s}`, metrics.Quote(agent))).Inc()
		if status != protocol.OK {
			o.reg.Counter(fmt.Sprintf(`mco_external_agent_failures_total{agent=%s}`, metrics.Quote(agent))).Inc()
		}
	}
}

// statusName is the label of a reply status (MCollective's status codes).
func statusName(s protocol.StatusCode) string {
	switch s {
	case protocol.OK:
		return "ok"
	case protocol.Aborted:
		return "aborted"
	case protocol.UnknownAction:
		return "unknown_action"
	case protocol.MissingData:
		return "missing_data"
	case protocol.InvalidData:
		return "invalid_data"
	case protocol.UnknownError:
		return "unknown_error"
	}
	return fmt.Sprintf("status_%d", int(s))
}
