//go:build !linux

package loadgen

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
