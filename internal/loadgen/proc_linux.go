package loadgen

import "syscall"

// procAttr makes the kernel kill a child server if the load generator dies
// before it stops the child.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
