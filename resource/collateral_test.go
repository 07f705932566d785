package resource_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sftkit/sft/resource"
)

func TestCollateralKeepsClassAndMessage(t *testing.T) {
	t.Parallel()
	base := resource.NodeLocal(errors.New("plugin process killed"))
	err := fmt.Errorf("instance web/app: %w", resource.Collateral(base))
	if !resource.IsCollateral(err) {
		t.Fatalf("IsCollateral(%v) = false, want true", err)
	}
	if got := resource.ClassOf(err); got != resource.ClassNodeLocal {
		t.Fatalf("ClassOf = %v, want %v", got, resource.ClassNodeLocal)
	}
	if err.Error() != "instance web/app: plugin process killed" {
		t.Fatalf("message = %q", err.Error())
	}
	if resource.IsCollateral(base) {
		t.Fatalf("IsCollateral(unmarked) = true")
	}
	if !resource.IsCollateral(resource.Collateral(nil)) {
		t.Fatalf("Collateral(nil) is not collateral")
	}
}
