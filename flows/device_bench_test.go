package flows

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/latch-dev/latch/server"
)

// BenchmarkDeviceApprovalToStored measures the device flow's latency as a
// person feels it: from the moment the approval is accepted in the browser
// to the moment latch has the tokens saved (FinishDeviceLogin returned),
// against the provider's poll interval — the floor, since latch may only ask
// once per interval. Approvals land at a random point of the interval, so
// the expected wait is about half of it, and it should never exceed it by
// more than a round trip. Run: go test -run '^$' -bench DeviceApproval
// -benchtime 10x ./flows/ (bench/device.sh does).
func BenchmarkDeviceApprovalToStored(b *testing.B) {
	for _, interval := range []time.Duration{time.Second, 5 * time.Second} {
		b.Run(fmt.Sprintf("interval=%s", interval), func(b *testing.B) {
			s := newServeEnv(b, func(c *server.Config) { c.DevicePoll = interval })
			s.register("bench", false)
			var waits []time.Duration
			for b.Loop() {
				// Each login gets its own bound: the env's covers setup only.
				ctx, cancel := context.WithTimeout(context.Background(), interval+30*time.Second)
				d, err := s.StartDeviceLogin(ctx, OAuthRequest{Server: s.url, Profile: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				stored := make(chan time.Time, 1)
				go func() {
					if _, err := s.FinishDeviceLogin(ctx, d); err != nil {
						b.Error(err)
					}
					stored <- time.Now()
				}()
				// Approve at a random point of the poll cycle.
				time.Sleep(rand.N(interval))
				s.approveDevice(d, "bench", "", "approve")
				approved := time.Now()
				waits = append(waits, (<-stored).Sub(approved))
				cancel()
			}
			slices.Sort(waits)
			var sum time.Duration
			for _, w := range waits {
				sum += w
			}
			b.ReportMetric(float64(sum.Milliseconds())/float64(len(waits)), "ms-mean")
			b.ReportMetric(float64(waits[len(waits)/2].Milliseconds()), "ms-median")
			b.ReportMetric(float64(waits[len(waits)-1].Milliseconds()), "ms-max")
			b.ReportMetric(float64(interval.Milliseconds()), "ms-interval")
		})
	}
}
