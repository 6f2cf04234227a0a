//go:build unix

package loadgen

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft limit on open files to the hard limit and
// fails when that is below need: every client connection is a descriptor
// here and, on loopback, one more in the server.
func RaiseFileLimit(need uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return fmt.Errorf("raise the open-file limit: %w", err)
		}
	}
	if l.Cur < need {
		return fmt.Errorf("the open-file limit is %d, this run needs about %d (raise the hard limit: ulimit -Hn)", l.Cur, need)
	}
	return nil
}
