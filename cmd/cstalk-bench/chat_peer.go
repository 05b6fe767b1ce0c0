package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// connectPeerChat opens the chat workload's connections on RabbitMQ
// Web-STOMP as plain pub/sub: room i is the topic /topic/room.i, which its
// customer and its counselor connection subscribe to, besides a private
// topic each (as a chat connection holds its private channel); customers
// SEND straight to their room's topic. Nothing is authorized or stored, so
// this is the floor a broker pays for the same wire traffic. Every message
// carries a body shaped and sized like the MESSAGE event cstalk delivers.
func connectPeerChat(ctx context.Context, c chatConfig, wsURL string, bodySize int, log *slog.Logger) (*chatWorkload, error) {
	t := &target{url: wsURL, style: "rabbit"}
	if err := t.resolve(); err != nil {
		return nil, err
	}
	t.host = "/"
	w := &chatWorkload{target: wsURL}
	room := func(i int) string { return "/topic/room." + strconv.Itoa(i) }
	var err error
	log.Info("connecting customers", "n", c.customers, "peer", wsURL)
	w.customers, err = connectMany(ctx, t, c.customers, c.parallel, func(i int, sc *stompClient) error {
		if err := sc.subscribe("private", "/topic/private.c"+strconv.Itoa(i)); err != nil {
			return err
		}
		return sc.subscribe("room", room(i))
	})
	if err != nil {
		return nil, fmt.Errorf("chat: customers: %w", err)
	}
	w.sendHeaders = make([][]string, c.customers)
	for i := range w.sendHeaders {
		w.sendHeaders[i] = []string{"destination", room(i), "content-type", "application/json"}
	}
	w.body = func(b []byte, i int, stamp int64) []byte {
		start := len(b)
		b = peerEvent(b, stamp, i)
		for len(b)-start < bodySize {
			b = append(b, ' ') // JSON whitespace keeps the event valid
		}
		return b
	}
	log.Info("connecting counselors", "connections", c.memberConns)
	w.members, err = connectMany(ctx, t, c.memberConns, c.parallel, func(j int, sc *stompClient) error {
		if err := sc.subscribe("private", "/topic/private.m"+strconv.Itoa(j)); err != nil {
			return err
		}
		for i := j; i < c.customers; i += c.memberConns {
			if err := sc.subscribe("room-"+strconv.Itoa(i), room(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("chat: counselors: %w", err)
	}
	return w, nil
}

// peerEvent appends a MESSAGE event laid out as cstalk renders one (field
// order, names and typical values), carrying stamp where the message text
// goes, so readChat finds it the same way.
func peerEvent(b []byte, stamp int64, room int) []byte {
	id := strconv.Itoa(100000 + room)
	b = append(b, `{"eventName":"MESSAGE","companyId":"1","roomId":"`...)
	b = append(b, id...)
	b = append(b, `","data":{"message":{"id":1234567,"joinMessageId":0,"createDate":"2026-01-01 12:00:00","updateDate":"2026-01-01 12:00:00","speakerId":`...)
	b = append(b, id...)
	b = append(b, `,"speakerName":"bench `...)
	b = append(b, id...)
	b = append(b, `","roomId":`...)
	b = append(b, id...)
	b = append(b, `,"roomName":"bench `...)
	b = append(b, id...)
	b = append(b, `","companyId":"1","messageType":0,"noReadCount":1,"isSystemMessage":0,"message":"`...)
	b = appendStamp(b, stamp, 0, 0)
	b = append(b, `bench","messageAdminType":0,"isEmployee":0,"isCustomer":1,"isOnline":1,"messageDetail":"","isDeleted":0}},"target":"BROADCAST","sessionId":"0123456789abcdef01234567"}`...)
	return b
}
