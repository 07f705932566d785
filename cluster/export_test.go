package cluster

import "sync"

// Net is a test's packet filter over the real sockets: it cuts links
// between nodes per path (RaftPath: raft's TCP) and direction.
type Net struct {
	mu    sync.Mutex
	cut   map[netLink]bool
	nodes []*Node
}

type netLink struct {
	from, to string
	path     int
}

// RaftPath is the path index of raft's TCP traffic.
const RaftPath = raftPath

// NewNet returns a filter that cuts nothing.
func NewNet() *Net { return &Net{cut: map[netLink]bool{}} }

// Blocked implements linkFilter.
func (w *Net) Blocked(from, to string, path int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cut[netLink{from, to, path}]
}

// Set cuts (or heals) from -> to on the paths given.
func (w *Net) Set(cut bool, from, to string, paths ...int) {
	w.mu.Lock()
	for _, p := range paths {
		if cut {
			w.cut[netLink{from, to, p}] = true
		} else {
			delete(w.cut, netLink{from, to, p})
		}
	}
	nodes := append([]*Node(nil), w.nodes...)
	w.mu.Unlock()
	for _, n := range nodes {
		n.mux.refilter()
	}
}

// Heal heals every link.
func (w *Net) Heal() {
	w.mu.Lock()
	clear(w.cut)
	w.mu.Unlock()
}

// Add registers a started node (its raft connections are cut when Set
// cuts them).
func (w *Net) Add(n *Node) {
	w.mu.Lock()
	w.nodes = append(w.nodes, n)
	w.mu.Unlock()
}

// WithNet returns c with the filter installed.
func WithNet(c Config, w *Net) Config {
	c.filter = w
	return c
}

// Kill stops the node like a crash: its groups are not touched.
func (n *Node) Kill() { n.kill() }

// LoseReplies drops the next k replies to this node's requests to the
// leader after they arrived, as a network that lost them would.
func (n *Node) LoseReplies(k int) { n.mux.loseReplies.Store(int32(k)) }
