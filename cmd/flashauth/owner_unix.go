//go:build unix

package main

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedBySelf reports whether fi belongs to the user running the CLI.
func ownedBySelf(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}
