package e2e

import "syscall"

// procAttr makes the kernel kill a replica if the test binary dies (a
// timeout panic, a crash) before its cleanups run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
