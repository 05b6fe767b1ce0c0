//go:build !linux

package broker

import "syscall"

func socketRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func socketWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
