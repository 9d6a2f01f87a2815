package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/maildesk/maildesk/store/pgstore/pgtest"
)

// The scaleout scenario at a tiny size: figures for 1, 2 and 3 nodes, the
// mailboxes all claimed at start-up, no lease churn in a steady window.
func TestScaleOutScenario(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes and simulators")
	}
	o := tiny()
	o.Postgres, o.Mailboxes, o.Scenarios = pgtest.URL(t), 9, []string{"scaleout"}
	o.Duration = 2 * time.Second
	var out bytes.Buffer
	res, err := Run(context.Background(), o, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, n := range []string{"n1_", "n2_", "n3_"} {
		for _, k := range []string{"cpu_pct_per_1k", "rss_mb_per_1k", "busiest_node_cpu_pct", "lease_churn_window", "lease_churn_start"} {
			if _, ok := res[0].Get(n + k); !ok {
				t.Errorf("no %s%s", n, k)
			}
		}
		if v, _ := res[0].Get(n + "lease_churn_start"); v < 9 {
			t.Errorf("%slease_churn_start = %v: the 9 mailboxes were not all claimed", n, v)
		}
		if v, _ := res[0].Get(n + "rss_mb_per_1k"); v <= 0 {
			t.Errorf("%srss_mb_per_1k = %v", n, v)
		}
	}
}
