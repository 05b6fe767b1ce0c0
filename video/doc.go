// Package video owns cstalk's video rooms: one SFU on pion/webrtc, one
// room registry, and the seed-002 signaling front end (JSON messages
// {"id": ...} over a plain WebSocket at /signal and over SockJS at
// /signal/...).
//
// Model. A room holds participants. Rooms are keyed by RoomKey: the
// company the authorizer vouched for, a kind (c- channel, r- chat call,
// g- guide) and a name, so company 1's c-1 and company 2's c-1 are two
// rooms; every front end joins and closes rooms through that key. Each
// participant has one audio and one video forward track for its whole
// stay; receiveVideoFrom with its own id opens its publishing peer
// connection, with another's id a subscribing one (one peer connection
// per stream, as the seed's clients expect). Because forward tracks
// exist before anyone publishes, a subscription answered early starts
// receiving the moment the publisher sends, and a republish after a
// reconnect continues the same stream (sequence numbers and timestamps
// rewritten). RTP is forwarded without decoding; PLI and FIR from
// subscribers are merged and sent to the publisher, NACKs are answered
// from the pion interceptors' buffers, and publishers get TWCC feedback.
//
// Seams for the rest of cstalk. Authorizer decides who may join (chat
// implements it: members by bearer token, customers by a short-lived
// video token for r-{roomId}); Config.OnEvent receives joins, leaves and
// room lifetimes (system messages, call duration); CloseRoom, Rooms,
// Participants and ICEServers serve other front ends and the chat side.
//
// The package knows nothing of chat, STOMP or storage. Settings are
// documented in README.md next to this file.
package video
