// Package broker is a STOMP 1.0–1.2 broker over SockJS and raw WebSocket.
//
// It owns the wire: transports, frame parsing and limits, sessions,
// subscriptions, local fan-out and the Bus that carries messages between
// nodes. It knows nothing of counseling: a domain plugs in through
// Application and publishes through Server.Publish and Server.SendPrivate.
//
// # Endpoints
//
// Server.Handler serves Config.Path (default /ws): every SockJS transport
// sockjs-client 1.6 uses (websocket, xhr-streaming, xhr-polling,
// eventsource, iframe/htmlfile, jsonp) and /ws/info, and a raw WebSocket at
// /ws/websocket carrying plain STOMP frames (subprotocols v12.stomp,
// v11.stomp, v10.stomp). sockjs-go serves the HTTP transports, /info and the
// iframe page; the SockJS websocket transport is served here, with a size
// limit on inbound messages. When several frames are queued for a client
// they travel in one transport message. A SockJS session belongs to the
// client address that opened it: its HTTP transports refuse (403) requests
// from another address (SessionOwners; Config.SockJSAnyAddress turns that
// off).
//
// # Destinations
//
// A leading slash is optional everywhere; hooks see destinations without
// it. A SEND to an application prefix (pub/) goes to
// Application.HandleSend, not to subscribers; a SEND to a broker prefix
// (sub/) needs Application.AuthorizeSend and reaches every subscriber on
// every node. Each connection may subscribe to Config.PrivateDestination
// (user/session/message), which receives what Server.SendPrivate sends to
// its session id, from any node. Anything else is refused, after
// Application.AuthorizeSubscribe had its say for a SUBSCRIBE.
//
// # Limits
//
// Frame size, header count and header line length are checked on the raw
// bytes before a frame is parsed; subscriptions, transactions and the
// outbound queue are bounded per connection. A breach, a malformed frame or
// a refusal gets an ERROR frame (a short stable English code in the message
// header, a readable body in Korean, or English when accept-language
// prefers it)
// and the connection closes; other connections never wait for it. A client that cannot keep up with its messages is cut with
// "slow consumer". A frame that has begun must end within FrameTimeout
// whatever the heart-beats ("frame timeout"), and the unfinished frames of
// all connections hold at most MaxPendingBytes together: the connection
// whose frame would pass it is cut with "server busy".
//
// # Coalescing
//
// PublishCoalesced publishes a state under a key: each node delivers to its
// own subscribers the first message of a destination at once, then holds
// the newest per key for the rest of CoalesceWindow and delivers them in
// publication order when it ends. Subscribers get at most one message per
// key and window however many nodes publish, always the last state, and
// the states in the order they changed. On the bus it travels in payload format 2, which carries the
// key in place of the content type.
//
// # Cluster
//
// The hub subscribes a topic on the Bus for its first local subscriber and
// unsubscribes after the last. Publish delivers locally at once and hands
// the bus a payload of a format byte, the publish time, the content type
// and the body; the destination is the topic. Private destinations use the
// topic "@session/" + session id.
//
// # Metrics
//
// cstalk_broker_connections{transport}, cstalk_broker_subscriptions,
// cstalk_broker_unfinished_frame_bytes,
// cstalk_broker_frames_in_total{command}, cstalk_broker_frames_out_total{command},
// cstalk_broker_errors_total{kind} and cstalk_broker_fanout_latency_seconds.
package broker
