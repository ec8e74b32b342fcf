// Package procgroup runs commands in a process group of their own, so that
// cancelling one (a timeout) kills what it started too: helpers that facter
// spawns, an external agent's backgrounded children, a discovery script's
// pipeline. Every place that runs a tool with a deadline uses it.
package procgroup
