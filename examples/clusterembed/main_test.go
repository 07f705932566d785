package main

import (
	"context"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	first, second, err := run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first != "a" || second == "" || second == first {
		t.Errorf("web ran on %q then %q; want a (preferred) then another node", first, second)
	}
}
