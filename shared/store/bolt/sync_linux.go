package bolt

import (
	"os"
	"syscall"
)

// syncData makes f's data durable without its timestamps (a log record changes no size).
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
