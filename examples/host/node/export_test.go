package node

// Followers is the number of live event followers (tests only).
func (n *Node) Followers() int {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	return len(n.followers)
}
