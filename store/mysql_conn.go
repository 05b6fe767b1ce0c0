package store

import (
	"context"
	"net"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/cstalk/cstalk/broker/rawconn"
)

// rawTCPNet is the network name under which the driver dials the writer's
// and context readers' connections with rawconn: raw socket I/O keeps the
// runtime's monitor thread asleep between batches, and the connection's
// own check before each request replaces the driver's liveness check.
const rawTCPNet = "cstalk-rawtcp"

// dialRawTCP dials the server's TCP address. The driver bounds ctx with the
// DSN's dial timeout; the function holds nothing, so registering it again,
// for every store, is harmless.
func dialRawTCP(ctx context.Context, addr string) (net.Conn, error) {
	return rawconn.Dial(ctx, addr, true)
}

// useRawTCP makes cfg dial its TCP address with dialRawTCP.
func useRawTCP(cfg *mysqldriver.Config) {
	if cfg.Net != "tcp" {
		return
	}
	mysqldriver.RegisterDialContext(rawTCPNet, dialRawTCP)
	cfg.Net = rawTCPNet
}
