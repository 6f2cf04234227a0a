//go:build !unix

package sqlite

import "time"

// cpuTime is not measured here: benchmarks report no CPU time.
func cpuTime() (time.Duration, bool) { return 0, false }
