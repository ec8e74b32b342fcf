package filter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Operators of compound expression nodes (Expr.Op).
const (
	OpAnd   = "and"   // every Args element holds
	OpOr    = "or"    // at least one Args element holds
	OpNot   = "not"   // the single Args element does not hold
	OpFact  = "fact"  // Fact comparison holds
	OpClass = "class" // the node has Class (exact or /regex/)
	OpData  = "data"  // Data function call holds
)

// Expr is a parsed compound (-S) expression: a tree that travels in the
// signed request as plain data and is evaluated by each node. Build it with
// ParseCompound; do not copy an Expr by value (it caches compiled regexes)
// nor modify it after the first Eval.
type Expr struct {
	Op    string      `json:"op"`
	Args  []*Expr     `json:"args,omitempty"`  // and, or, not
	Fact  *FactFilter `json:"fact,omitempty"`  // fact
	Class string      `json:"class,omitempty"` // class
	Data  *DataCall   `json:"data,omitempty"`  // data

	cache exprCache
}

// DataCall is a data plugin statement: plugin('query'), plugin('query').field,
// optionally compared: plugin('query').field OP value.
//
// Truth rules:
//   - with Operator: the Field (default "value") of the result is compared
//     like a fact (numeric when both sides are numbers, =~ regex, lists match
//     if any element matches); a missing field is false.
//   - with Field and no Operator: the field is truthy (true, "true", non-zero).
//   - neither: the result's "present" field is truthy; a result without
//     "present" uses its first boolean field in key order (collective's
//     "member"); a result with no boolean field is false.
//
// A plugin error always makes the statement false.
type DataCall struct {
	Plugin   string `json:"plugin"`
	Query    string `json:"query"`
	Field    string `json:"field,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
}

// exprCache holds the compiled form of one node, built once on first use so
// that concurrent evaluations share it.
type exprCache struct {
	once  sync.Once
	err   error
	cmp   *comparator // fact and data comparisons
	class pattern
}

// Validate checks the tree's structure and compiles its regexes. Trees from
// ParseCompound are always valid; trees decoded from the wire may not be.
func (e *Expr) Validate() error {
	if e == nil {
		return errors.New("compound filter: missing expression")
	}
	e.cache.once.Do(func() { e.cache.err = e.build() })
	return e.cache.err
}

func (e *Expr) build() error {
	switch e.Op {
	case OpAnd, OpOr:
		if len(e.Args) == 0 {
			return fmt.Errorf("compound filter: %q without operands", e.Op)
		}
	case OpNot:
		if len(e.Args) != 1 {
			return fmt.Errorf("compound filter: \"not\" needs exactly one operand, got %d", len(e.Args))
		}
	case OpFact:
		if e.Fact == nil || e.Fact.Fact == "" {
			return errors.New("compound filter: fact statement without a fact name")
		}
		c, err := newComparator(e.Fact.Operator, e.Fact.Value)
		if err != nil {
			return fmt.Errorf("compound filter: fact %s: %w", e.Fact.Fact, err)
		}
		e.cache.cmp = c
		return nil
	case OpClass:
		p, err := compilePattern(e.Class)
		if err != nil {
			return fmt.Errorf("compound filter: class %q: %w", e.Class, err)
		}
		e.cache.class = p
		return nil
	case OpData:
		d := e.Data
		if d == nil || d.Plugin == "" {
			return errors.New("compound filter: data statement without a plugin name")
		}
		if d.Operator == "" {
			if d.Value != "" {
				return fmt.Errorf("compound filter: %s(): value %q without an operator", d.Plugin, d.Value)
			}
			return nil
		}
		c, err := newComparator(d.Operator, d.Value)
		if err != nil {
			return fmt.Errorf("compound filter: %s(): %w", d.Plugin, err)
		}
		e.cache.cmp = c
		return nil
	default:
		return fmt.Errorf("compound filter: unknown node type %q", e.Op)
	}
	for _, a := range e.Args {
		if err := a.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Eval reports whether the node satisfies the expression. An invalid tree
// (see Validate) never matches, and neither does one whose evaluation needed
// a data call that failed — not even under "not": a failure must not select
// a node (or, in ActionPolicy, allow a request). ctx is passed to the node's
// Data for every data call: its cancellation (the request's data budget)
// makes the remaining calls fail.
func (e *Expr) Eval(ctx context.Context, n Node) bool {
	ok, err := e.EvalErr(ctx, n)
	return ok && err == nil
}

// EvalErr is Eval that also says why a tree could not be evaluated: it is
// invalid, or a data call it needed failed. The bool is false whenever the
// error is set.
func (e *Expr) EvalErr(ctx context.Context, n Node) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	var failed error
	ok := e.eval(ctx, n, &failed)
	if failed != nil {
		return false, failed
	}
	return ok, nil
}

// eval assumes a validated tree. A data call that fails sets *failed (the
// first failure) and counts as false; the caller discards the result.
func (e *Expr) eval(ctx context.Context, n Node, failed *error) bool {
	switch e.Op {
	case OpAnd:
		for _, a := range e.Args {
			if !a.eval(ctx, n, failed) {
				return false
			}
		}
		return true
	case OpOr:
		for _, a := range e.Args {
			if a.eval(ctx, n, failed) {
				return true
			}
		}
		return false
	case OpNot:
		return !e.Args[0].eval(ctx, n, failed)
	case OpFact:
		v, ok := n.Fact(e.Fact.Fact)
		return ok && e.cache.cmp.match(v)
	case OpClass:
		return e.cache.class.MatchAny(n.Classes())
	case OpData:
		return e.evalData(ctx, n, failed)
	}
	return false
}

// tri is a three-valued truth for Decide.
type tri int

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func toTri(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

// eval3 is eval with data calls that return ErrUnknown as unknown (Kleene
// logic). Other data call failures set *failed as in eval.
func (e *Expr) eval3(ctx context.Context, n Node, failed *error) tri {
	switch e.Op {
	case OpAnd:
		out := triTrue
		for _, a := range e.Args {
			switch a.eval3(ctx, n, failed) {
			case triFalse:
				return triFalse
			case triUnknown:
				out = triUnknown
			}
		}
		return out
	case OpOr:
		out := triFalse
		for _, a := range e.Args {
			switch a.eval3(ctx, n, failed) {
			case triTrue:
				return triTrue
			case triUnknown:
				out = triUnknown
			}
		}
		return out
	case OpNot:
		switch e.Args[0].eval3(ctx, n, failed) {
		case triTrue:
			return triFalse
		case triFalse:
			return triTrue
		}
		return triUnknown
	case OpData:
		var err error
		v := e.evalData(ctx, n, &err)
		if err != nil {
			if errors.Is(err, ErrUnknown) {
				return triUnknown
			}
			if *failed == nil {
				*failed = err
			}
			return triFalse
		}
		return toTri(v)
	}
	return toTri(e.eval(ctx, n, failed))
}

func (e *Expr) evalData(ctx context.Context, n Node, failed *error) bool {
	d := e.Data
	res, err := n.Data(ctx, d.Plugin, d.Query)
	if err != nil {
		if *failed == nil {
			*failed = fmt.Errorf("data plugin %s('%s'): %w", d.Plugin, d.Query, err)
		}
		return false
	}
	if d.Field == "" && d.Operator == "" {
		return defaultTruth(res)
	}
	field := d.Field
	if field == "" {
		field = "value"
	}
	v, ok := Lookup(res, field)
	if !ok {
		return false
	}
	if d.Operator == "" {
		return truthy(v)
	}
	return e.cache.cmp.match(v)
}

// defaultTruth implements the bare plugin('query') rule documented on DataCall.
func defaultTruth(res map[string]any) bool {
	if v, ok := res["present"]; ok {
		return truthy(v)
	}
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if b, ok := res[k].(bool); ok {
			return b
		}
	}
	return false
}

// Equal reports whether two trees are structurally identical (ignoring
// caches). go-cmp uses it too.
func (e *Expr) Equal(o *Expr) bool {
	if e == nil || o == nil {
		return e == o
	}
	if e.Op != o.Op || e.Class != o.Class || len(e.Args) != len(o.Args) {
		return false
	}
	if (e.Fact == nil) != (o.Fact == nil) || e.Fact != nil && *e.Fact != *o.Fact {
		return false
	}
	if (e.Data == nil) != (o.Data == nil) || e.Data != nil && *e.Data != *o.Data {
		return false
	}
	for i := range e.Args {
		if !e.Args[i].Equal(o.Args[i]) {
			return false
		}
	}
	return true
}

// Functions lists the data plugins the expression calls, sorted and unique,
// so the client can reject unknown plugins before sending.
func (e *Expr) Functions() []string {
	var names []string
	e.walk(func(x *Expr) {
		if x.Op == OpData && x.Data != nil {
			names = append(names, x.Data.Plugin)
		}
	})
	slices.Sort(names)
	return slices.Compact(names)
}

// ValidateFunctions returns an error naming every data plugin the expression
// calls that known does not recognise.
func (e *Expr) ValidateFunctions(known func(name string) bool) error {
	var unknown []string
	for _, name := range e.Functions() {
		if !known(name) {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("compound filter: unknown data plugin %s", strings.Join(unknown, ", "))
	}
	return nil
}

func (e *Expr) walk(f func(*Expr)) {
	if e == nil {
		return
	}
	f(e)
	for _, a := range e.Args {
		a.walk(f)
	}
}
