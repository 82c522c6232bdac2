package readcheck_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (the API's projections and workers) must be gone when it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
