package lambdactx

import (
	"context"
	"testing"
	"time"
)

func TestBeforeDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		left   time.Duration
		margin time.Duration // expected, within a second
	}{
		{"a long invocation keeps 10 s", 5 * time.Minute, 10 * time.Second},
		{"a short one keeps a tenth", 30 * time.Second, 3 * time.Second},
	} {
		parent, cancel := context.WithTimeout(context.Background(), tc.left)
		ctx, stop := BeforeDeadline(parent)
		pd, _ := parent.Deadline()
		d, ok := ctx.Deadline()
		if got := pd.Sub(d); !ok || got < tc.margin-time.Second || got > tc.margin+time.Second {
			t.Errorf("%s: margin %v, want about %v", tc.name, got, tc.margin)
		}
		stop()
		cancel()
	}
	ctx, stop := BeforeDeadline(context.Background())
	defer stop()
	if _, ok := ctx.Deadline(); ok {
		t.Error("a context without a deadline got one")
	}
}
