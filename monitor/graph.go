package monitor

import (
	"fmt"
	"slices"
	"strings"
)

// graph is a group's dependency DAG over resource indexes.
type graph struct {
	deps       [][]int // deps[i]: the resources i depends on
	dependents [][]int // dependents[i]: the resources that depend on i
	order      []int   // a topological order: dependencies first
}

// buildGraph validates the dependencies of specs (names unique and known,
// no self-dependency, no cycle) and returns the graph. A cycle is an error
// that names it: "dependency cycle: a -> b -> c -> a".
func buildGraph(specs []ResourceSpec) (*graph, error) {
	idx := make(map[string]int, len(specs))
	for i, s := range specs {
		if s.Name == "" {
			return nil, fmt.Errorf("resources[%d].name: must not be empty", i)
		}
		if j, dup := idx[s.Name]; dup {
			return nil, fmt.Errorf("resources[%d].name %q: already used by resources[%d]", i, s.Name, j)
		}
		idx[s.Name] = i
	}
	g := &graph{deps: make([][]int, len(specs)), dependents: make([][]int, len(specs))}
	for i, s := range specs {
		for k, d := range s.DependsOn {
			j, ok := idx[d]
			switch {
			case !ok:
				return nil, fmt.Errorf("resources[%d].depends_on[%d] %q: no such resource in the group", i, k, d)
			case j == i:
				return nil, fmt.Errorf("resources[%d].depends_on[%d] %q: a resource cannot depend on itself", i, k, d)
			case slices.Contains(g.deps[i], j):
				return nil, fmt.Errorf("resources[%d].depends_on[%d] %q: listed twice", i, k, d)
			}
			g.deps[i] = append(g.deps[i], j)
			g.dependents[j] = append(g.dependents[j], i)
		}
	}
	// Depth-first search: white (0), on the stack (1), done (2).
	color := make([]int, len(specs))
	var stack []int
	var visit func(i int) error
	visit = func(i int) error {
		color[i] = 1
		stack = append(stack, i)
		for _, j := range g.deps[i] {
			switch color[j] {
			case 1:
				start := slices.Index(stack, j)
				names := make([]string, 0, len(stack)-start+1)
				for _, k := range stack[start:] {
					names = append(names, specs[k].Name)
				}
				names = append(names, specs[j].Name)
				return fmt.Errorf("dependency cycle: %s", strings.Join(names, " -> "))
			case 0:
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = 2
		g.order = append(g.order, i)
		return nil
	}
	for i := range specs {
		if color[i] == 0 {
			if err := visit(i); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}
