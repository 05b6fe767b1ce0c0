//go:build !linux

package store

import mysqldriver "github.com/go-sql-driver/mysql"

// useRawTCP leaves cfg as it is: raw socket I/O is Linux-only
// (mysql_conn_linux.go).
func useRawTCP(*mysqldriver.Config) {}
