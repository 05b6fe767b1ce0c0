package main

import (
	"context"
	"errors"
	"log/slog"
)

// runChat is where the full chat server is driven: customers and counselors
// sending pub/socket/message MESSAGE events and the delivery on
// sub/socket/room/{id} measured.
func runChat(ctx context.Context, args []string, log *slog.Logger) error {
	return errors.New("chat: not implemented yet")
}
