// Package facts gathers a node's facts and configuration-management classes
// (docs/usage.md, "Facts") and keeps them in memory so that filters, agents and registration
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
// A later layer replaces a top-level fact of an earlier one whole, as
// MCollective did: maps are not merged, so a file's os.release never leaves
// the built-in os.release.minor beside it, and lists are not concatenated.
// Built-in facts use Facter's names and values (operatingsystemrelease and
// os.release.full are the full release, 12.11 on Debian 12.11).
//
// # Reloading
//
// A [Store] publishes an immutable snapshot through an atomic pointer, so
// readers never lock. [Store.Run] polls the facts and classes files and
// re-collects built-ins and command sources on an interval. A file that fails
// to parse keeps its last good content; a command that fails keeps its last
// good output. Both are logged.
//
// # Classes
//
// Classes come from the classes file and from sources that push them
// ([Store.SetClasses]: Puppet's classes.txt located through Puppet's
// settings, a Chef run list), merged in that order with repeats dropped.
package facts
