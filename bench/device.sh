#!/usr/bin/env bash
# Benchmarks the device flow (RFC 8628) as a person feels it: the time from
# the approval being accepted in the browser to latch having the tokens saved,
# against the provider's poll interval, the floor (latch may poll only once
# per interval). An in-process latch serve on 127.0.0.1 with a form-filling
# browser; approvals land at random points of the poll cycle, so the mean
# should be near half the interval and the maximum at most the interval plus
# one round trip. Results go to stdout and bench/out/device.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
mkdir -p bench/out
go test -run '^$' -bench DeviceApprovalToStored -benchtime "${RUNS}x" ./flows/ 2>&1 |
  grep -v 'request error' | tee bench/out/device.txt
