//go:build !linux

package store

import "os"

// syncData is wal_sync_linux.go's; elsewhere it is the file's Sync.
func syncData(f *os.File) error { return f.Sync() }
