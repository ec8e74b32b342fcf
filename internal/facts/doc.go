// Package facts gathers a node's facts and configuration-management classes
// (SPEC §6) and keeps them in memory so that filters, agents and registration
// never touch the disk while serving a request.
//
// # Layers and merge order
//
// Facts come from three layers, merged from lowest to highest precedence:
//
//  1. built-in facts (os, kernel, memory, ...; see [Options.Builtins]);
//  2. command sources such as `facter -j` or `ohai`, in the order given;
//  3. facts files (YAML or JSON), in the order given.
//
// A later layer overrides an earlier one. Unlike MCollective, which only
// replaced top-level keys, nested maps are merged deeply: a file that sets
// os.release.major keeps the built-in os.family. Lists and scalars are
// replaced as a whole, never concatenated.
//
// # Reloading
//
// A [Store] publishes an immutable snapshot through an atomic pointer, so
// readers never lock. [Store.Run] polls the facts and classes files and
// re-collects built-ins and command sources on an interval. A file that fails
// to parse keeps its last good content; a command that fails keeps its last
// good output. Both are logged.
package facts
