package config

import (
	"fmt"
	"slices"
	"strings"
)

// RunsAfter returns the environments whose deployment queued by the same
// push must end before this environment's starts: those named by after:,
// and the environment whose code it shares. They are sorted by ID, each
// once.
func (e *Environment) RunsAfter() []*Environment {
	out := slices.Clone(e.AfterEnvs)
	if e.Code != nil && e.Code != e && !slices.Contains(out, e.Code) {
		out = append(out, e.Code)
	}
	slices.SortFunc(out, func(a, b *Environment) int { return strings.Compare(a.ID(), b.ID()) })
	return out
}

// validateOrder checks every after: entry (a fraise/environment that
// exists, not the environment itself, listed once), links it into
// AfterEnvs, and then refuses a cycle in the order that after: and
// shares_code_with make together: the environments on it would each wait
// for another forever.
func (l *loader) validateOrder() {
	for _, e := range l.cfg.Environments() {
		if e == nil {
			continue
		}
		path := envPath(e.Fraise.Name, e.Name) + ".after"
		for i, id := range e.After {
			if target := l.afterTarget(indexPath(path, i), e, id); target != nil {
				e.AfterEnvs = append(e.AfterEnvs, target)
			}
		}
	}
	l.refuseOrderCycles()
}

// afterTarget resolves one after: entry written at p, or reports why it
// cannot be resolved.
func (l *loader) afterTarget(p string, e *Environment, id string) *Environment {
	fname, ename, ok := strings.Cut(id, "/")
	if !ok || fname == "" || ename == "" || strings.Contains(ename, "/") {
		l.report(p, fmt.Sprintf("%q is not fraise/environment", id), "e.g. hello/production")
		return nil
	}
	target, err := l.cfg.Lookup(fname, ename)
	switch {
	case err != nil:
		l.report(p, err.Error(), "")
		return nil
	case target == nil:
		return nil // an environment written as null is reported already
	case target == e:
		l.report(p, "an environment cannot run after itself", "remove this entry")
		return nil
	case slices.Contains(e.AfterEnvs, target):
		l.report(p, fmt.Sprintf("%s is listed twice", id), "remove this entry")
		return nil
	}
	return target
}

// orderEdge is one "runs after" link: from waits for to, because of the
// key written at path.
type orderEdge struct {
	to   *Environment
	path string
	// shared says the link is shares_code_with's rather than an after: entry.
	shared bool
}

// orderEdges lists what e waits for, in the order it was written: its
// after: entries, then the environment whose code it shares.
func orderEdges(e *Environment) []orderEdge {
	path := envPath(e.Fraise.Name, e.Name)
	var out []orderEdge
	for _, t := range e.AfterEnvs {
		// An entry resolves only when written as the target's ID, once.
		out = append(out, orderEdge{t, indexPath(path+".after", slices.Index(e.After, t.ID())), false})
	}
	if e.Code != nil && e.Code != e {
		out = append(out, orderEdge{e.Code, path + ".shares_code_with", true})
	}
	return out
}

// refuseOrderCycles walks the order depth first, in file order of names,
// and reports each link that closes a cycle, at that link, naming the
// whole cycle.
func (l *loader) refuseOrderCycles() {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[*Environment]int{}
	var stack []*Environment
	var visit func(e *Environment)
	visit = func(e *Environment) {
		state[e] = onPath
		stack = append(stack, e)
		for _, edge := range orderEdges(e) {
			switch state[edge.to] {
			case unseen:
				visit(edge.to)
			case onPath:
				l.reportCycle(edge, stack[slices.Index(stack, edge.to):])
			}
		}
		stack = stack[:len(stack)-1]
		state[e] = done
	}
	for _, e := range l.cfg.Environments() {
		if e != nil && state[e] == unseen {
			visit(e)
		}
	}
}

// reportCycle reports the link edge, which leads back to the start of
// cycle (the environments from there to the one edge leaves).
func (l *loader) reportCycle(edge orderEdge, cycle []*Environment) {
	hint := "remove one of the after: entries on the cycle"
	if edge.shared {
		from := cycle[len(cycle)-1]
		hint = fmt.Sprintf("%s runs after %s, whose code it shares; remove an after: entry on the cycle", from.ID(), edge.to.ID())
	}
	l.report(edge.path, fmt.Sprintf("%s: a cycle, so none of them would ever deploy", cycleWords(cycle, edge.to)), hint)
}

// cycleWords says "a runs after b, which runs after c, which runs after a".
func cycleWords(cycle []*Environment, back *Environment) string {
	ids := make([]string, 0, len(cycle)+1)
	for _, c := range cycle {
		ids = append(ids, c.ID())
	}
	ids = append(ids, back.ID())
	return ids[0] + " runs after " + strings.Join(ids[1:], ", which runs after ")
}
