package broker

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// handle runs one client frame on the reader goroutine. A receipt is queued
// only after the frame is fully handled; a refusal ends the connection with
// an ERROR frame that echoes the receipt.
func (c *Conn) handle(f *frame.Frame) {
	c.srv.metrics.frameIn(f.Command)
	receipt := f.Header.Get(frame.Receipt)
	c.notDone = false
	var perr *protocolError
	if f.Command == frame.CONNECT || f.Command == frame.STOMP {
		perr = c.onConnect(f)
	} else if !c.isConnected() {
		perr = malformed("not connected", "the first frame must be CONNECT or STOMP, got %s", f.Command)
	} else {
		perr = c.dispatch(f, true)
	}
	if perr != nil {
		c.fail(perr, receipt)
		return
	}
	if receipt != "" && f.Command != frame.CONNECT && f.Command != frame.STOMP && !c.notDone {
		c.send(encodeReceipt(c.version, receipt), outReceipt)
	}
	if f.Command == frame.DISCONNECT {
		c.closeQuietly()
	}
}

func (c *Conn) isConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// dispatch handles a frame of a connected client. outsideTx is false when a
// COMMIT replays the frames of its transaction.
func (c *Conn) dispatch(f *frame.Frame, outsideTx bool) *protocolError {
	switch f.Command {
	case frame.SEND, frame.ACK, frame.NACK:
		if tx, ok := f.Header.Contains(frame.Transaction); ok && outsideTx {
			return c.buffer(tx, f)
		}
		if f.Command == frame.SEND {
			return c.onSend(f)
		}
		return c.onAck(f)
	case frame.SUBSCRIBE:
		return c.onSubscribe(f)
	case frame.UNSUBSCRIBE:
		return c.onUnsubscribe(f)
	case frame.BEGIN:
		return c.onBegin(f)
	case frame.COMMIT:
		return c.onCommit(f)
	case frame.ABORT:
		tx, perr := c.transaction(f)
		if perr == nil {
			c.endTransaction(tx)
		}
		return perr
	case frame.DISCONNECT:
		return nil
	case frame.CONNECT, frame.STOMP:
		return malformed("already connected", "a connection sends CONNECT only once")
	}
	return malformed("invalid command", "unknown command %.16q", f.Command)
}

const serverName = "cstalk"

func (c *Conn) onConnect(f *frame.Frame) *protocolError {
	if c.isConnected() {
		return malformed("already connected", "a connection sends CONNECT only once")
	}
	v, ok := negotiate(f.Header)
	if !ok {
		return &protocolError{kind: "protocol", message: "unsupported protocol version",
			detail: "this server speaks STOMP 1.0, 1.1 and 1.2"}
	}
	var cx, cy time.Duration
	if hb, ok := f.Header.Contains(frame.HeartBeat); ok && v >= v11 {
		var err error
		if cx, cy, err = frame.ParseHeartBeat(hb); err != nil {
			return malformed("invalid heart-beat", "heart-beat must be two comma-separated millisecond counts")
		}
	}
	c.mu.Lock()
	c.version = v // the ERROR of a refused CONNECT is encoded for v
	c.english = prefersEnglish(f.Header.Get("accept-language"))
	c.mu.Unlock()
	principal, err := c.srv.app.Authenticate(c.ctx, c, f.Header)
	if err != nil {
		return &protocolError{kind: "auth", message: err.Error(), detail: err.Error()}
	}
	cfg := c.srv.cfg
	// The server sends every max(its offer, what the client wants) and
	// expects data every max(what the client offers, what it wants), when
	// both sides are willing (STOMP 1.1 "Heart-beating").
	var send, recv time.Duration
	if cfg.HeartbeatSend > 0 && cy > 0 {
		send = max(cfg.HeartbeatSend, cy)
	}
	if cfg.HeartbeatRecv > 0 && cx > 0 {
		recv = max(cfg.HeartbeatRecv, cx)
	}
	if v == v10 {
		send, recv = 0, 0
	}
	var offerSend, offerRecv int64
	if v >= v11 {
		offerSend, offerRecv = cfg.HeartbeatSend.Milliseconds(), cfg.HeartbeatRecv.Milliseconds()
	}
	connected := encodeConnected(v, c.id, serverName, offerSend, offerRecv)
	if receipt := f.Header.Get(frame.Receipt); receipt != "" {
		connected = append(connected, encodeReceipt(v, receipt)...)
	}

	c.mu.Lock()
	c.principal = principal
	c.connected = true
	c.hbSend, c.hbRecv = send, recv
	c.mu.Unlock()
	c.send(connected, outConnected)
	c.lastWrite.Store(time.Now().UnixNano())
	c.mu.Lock()
	if send > 0 || recv > 0 {
		c.resetTimerLocked(min(nonZero(send), nonZero(recv)))
	} else {
		c.stopTimerLocked()
	}
	c.mu.Unlock()
	return nil
}

func nonZero(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return d
}

// negotiate picks the highest version both sides speak; a CONNECT without
// accept-version is STOMP 1.0.
func negotiate(h Header) (version, bool) {
	accept, ok := h.Contains(frame.AcceptVersion)
	if !ok {
		return v10, true
	}
	best := version(0)
	for _, s := range strings.Split(accept, ",") {
		var v version
		switch strings.TrimSpace(s) {
		case "1.0":
			v = v10
		case "1.1":
			v = v11
		case "1.2":
			v = v12
		}
		best = max(best, v)
	}
	return best, best != 0
}

// destination kinds a client may name.
type destKind uint8

const (
	destUnknown destKind = iota
	destApp
	destBroker
	destPrivate
)

func (s *Server) classify(norm string) destKind {
	if norm == s.cfg.PrivateDestination {
		return destPrivate
	}
	if strings.HasPrefix(norm, "@") {
		return destUnknown
	}
	for _, p := range s.cfg.AppPrefixes {
		if strings.HasPrefix(norm, p) {
			return destApp
		}
	}
	for _, p := range s.cfg.BrokerPrefixes {
		if strings.HasPrefix(norm, p) {
			return destBroker
		}
	}
	return destUnknown
}

// refusal turns an Application error into nil (ErrHandled: the application
// told the client, the connection stays) or a protocol error.
func refusal(err error) *protocolError {
	if err == nil || errors.Is(err, ErrHandled) {
		return nil
	}
	return &protocolError{kind: "refused", message: err.Error(), detail: err.Error()}
}

func (c *Conn) onSubscribe(f *frame.Frame) *protocolError {
	dest := f.Header.Get(frame.Destination)
	if dest == "" {
		return malformed("missing destination", "SUBSCRIBE needs a destination header")
	}
	id := f.Header.Get(frame.Id)
	if id == "" {
		if c.version != v10 {
			return malformed("missing id", "SUBSCRIBE needs an id header")
		}
		id = dest
	}
	var ack ackMode
	switch f.Header.Get(frame.Ack) {
	case "", "auto":
		ack = ackAuto
	case "client":
		ack = ackClient
	case "client-individual":
		ack = ackClientIndividual
	default:
		return malformed("invalid ack mode", "ack must be auto, client or client-individual")
	}
	// The frame's header values share one string with the whole header
	// block; what the subscription keeps is part of its prefix instead.
	prefix := encodeSubscriptionPrefix(c.version, dest, id)
	norm := substringOf(prefix, normalizeDestination(dest))
	topicName := norm
	servable := true
	switch c.srv.classify(norm) {
	case destPrivate:
		topicName = privateTopic(c.id)
	case destBroker:
	default:
		servable = false
	}
	c.mu.Lock()
	dup := c.subscriptionLocked(id) >= 0
	n := len(c.subs)
	c.mu.Unlock()
	if dup {
		return malformed("duplicate subscription id", "%s", "subscription id "+id+" is already in use")
	}
	if n >= c.srv.cfg.MaxSubscriptions {
		return limitError("too many subscriptions", "a connection may hold at most %d subscriptions", c.srv.cfg.MaxSubscriptions)
	}
	// The application hears of every destination, even one the broker
	// cannot serve, so it can report the refusal its own way (an ERROR
	// event on the private destination) and keep the connection.
	if err := c.srv.app.AuthorizeSubscribe(c.ctx, c, norm, f.Header); err != nil {
		return refusal(err)
	}
	if !servable {
		return &protocolError{kind: "refused", message: "unknown destination",
			detail: "cannot subscribe to " + dest}
	}
	s := &subscription{conn: c, id: substringOf(prefix, id), dest: norm, topic: topicName, ack: ack,
		prefix: prefix}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.subs = append(c.subs, s)
	c.mu.Unlock()
	c.srv.subscribe(s)
	c.srv.app.Subscribed(c.ctx, c, norm, f.Header)
	return nil
}

// subscriptionLocked returns the index in c.subs of the subscription with
// id, or -1.
func (c *Conn) subscriptionLocked(id string) int {
	return slices.IndexFunc(c.subs, func(s *subscription) bool { return s.id == id })
}

func (c *Conn) onUnsubscribe(f *frame.Frame) *protocolError {
	id := f.Header.Get(frame.Id)
	if id == "" && c.version == v10 {
		id = f.Header.Get(frame.Destination)
	}
	if id == "" {
		return malformed("missing id", "UNSUBSCRIBE needs an id header")
	}
	c.mu.Lock()
	var s *subscription
	if i := c.subscriptionLocked(id); i >= 0 {
		s = c.subs[i]
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	for mid, owner := range c.unacked {
		if owner == s {
			delete(c.unacked, mid)
		}
	}
	c.mu.Unlock()
	if s == nil {
		return nil // nothing to do: unsubscribing twice is harmless
	}
	c.srv.unsubscribe(s)
	c.srv.app.Unsubscribed(c.ctx, c, s.dest)
	return nil
}

func (c *Conn) onSend(f *frame.Frame) *protocolError {
	dest := f.Header.Get(frame.Destination)
	if dest == "" {
		return malformed("missing destination", "SEND needs a destination header")
	}
	norm := normalizeDestination(dest)
	switch c.srv.classify(norm) {
	case destApp:
		err := c.srv.app.HandleSend(c.ctx, c, norm, f.Header, f.Body)
		if errors.Is(err, ErrNotDone) {
			c.notDone = true
		}
		return refusal(err)
	case destBroker:
		if err := c.srv.app.AuthorizeSend(c.ctx, c, norm, f.Header); err != nil {
			return refusal(err)
		}
		ct := safeContentType(f.Header.Get(frame.ContentType), c.srv.cfg.ContentType)
		c.srv.publish(c.ctx, norm, ct, f.Body, c.in.more)
		return nil
	default:
		return &protocolError{kind: "refused", message: "unknown destination",
			detail: "cannot send to " + dest}
	}
}

// onAck handles ACK and NACK. The broker keeps no messages, so a NACK
// only releases the message; either must name a delivered, unacknowledged
// message of a client or client-individual subscription.
func (c *Conn) onAck(f *frame.Frame) *protocolError {
	idText := f.Header.Get(frame.Id)
	if idText == "" || c.version < v12 {
		if mid := f.Header.Get(frame.MessageId); mid != "" {
			idText = mid
		}
	}
	if idText == "" {
		return malformed("missing id", "%s", f.Command+" needs the id of a message")
	}
	id, err := strconv.ParseUint(idText, 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.unacked[id]
	if err != nil || !ok {
		return malformed("unknown message", "%s", f.Command+" names no delivered, unacknowledged message: "+idText)
	}
	if s.ack == ackClientIndividual {
		delete(c.unacked, id)
		return nil
	}
	for mid, owner := range c.unacked { // client mode acknowledges cumulatively
		if owner == s && mid <= id {
			delete(c.unacked, mid)
		}
	}
	return nil
}

func (c *Conn) transaction(f *frame.Frame) (string, *protocolError) {
	tx := f.Header.Get(frame.Transaction)
	if tx == "" {
		return "", malformed("missing transaction", "%s", f.Command+" needs a transaction header")
	}
	if _, ok := c.txs[tx]; !ok {
		return "", malformed("unknown transaction", "%s", "no open transaction "+tx)
	}
	return tx, nil
}

func (c *Conn) onBegin(f *frame.Frame) *protocolError {
	tx := f.Header.Get(frame.Transaction)
	if tx == "" {
		return malformed("missing transaction", "BEGIN needs a transaction header")
	}
	if _, ok := c.txs[tx]; ok {
		return malformed("duplicate transaction", "%s", "transaction "+tx+" is already open")
	}
	if len(c.txs) >= c.srv.cfg.MaxTransactions {
		return limitError("too many transactions", "a connection may hold at most %d open transactions", c.srv.cfg.MaxTransactions)
	}
	if c.txs == nil {
		c.txs = make(map[string][]*frame.Frame)
	}
	c.txs[tx] = []*frame.Frame{}
	return nil
}

func (c *Conn) buffer(tx string, f *frame.Frame) *protocolError {
	frames, ok := c.txs[tx]
	if !ok {
		return malformed("unknown transaction", "%s", "no open transaction "+tx)
	}
	if len(frames) >= c.srv.cfg.MaxTransactionFrames {
		return limitError("transaction too large", "a transaction may hold at most %d frames", c.srv.cfg.MaxTransactionFrames)
	}
	if c.txBytes+len(f.Body) > c.srv.cfg.MaxTransactionBytes {
		return limitError("transaction too large", "open transactions may hold at most %d bytes", c.srv.cfg.MaxTransactionBytes)
	}
	c.txBytes += len(f.Body)
	c.txs[tx] = append(frames, f)
	return nil
}

func (c *Conn) onCommit(f *frame.Frame) *protocolError {
	tx, perr := c.transaction(f)
	if perr != nil {
		return perr
	}
	frames := c.endTransaction(tx)
	for _, bf := range frames {
		if perr := c.dispatch(bf, false); perr != nil {
			return perr
		}
		if c.isClosing() {
			return nil
		}
	}
	return nil
}

func (c *Conn) endTransaction(tx string) []*frame.Frame {
	frames := c.txs[tx]
	for _, f := range frames {
		c.txBytes -= len(f.Body)
	}
	delete(c.txs, tx)
	return frames
}
