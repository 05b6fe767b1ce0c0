package store

import (
	"os"
	"runtime"
	"syscall"
)

// syncData writes f's data and size to the disk (fdatasync, as SQLite
// commits on Linux). With more than one P it is an ordinary blocking call;
// with one it keeps the P (append_sqlite.go says why), so the node waits
// for the disk meanwhile.
func syncData(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	err = sc.Control(func(fd uintptr) {
		if runtime.GOMAXPROCS(0) == 1 {
			_, _, errno = syscall.RawSyscall(syscall.SYS_FDATASYNC, fd, 0, 0)
		} else {
			_, _, errno = syscall.Syscall(syscall.SYS_FDATASYNC, fd, 0, 0)
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("fdatasync", errno)
	}
	return nil
}
