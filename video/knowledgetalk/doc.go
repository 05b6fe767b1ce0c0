// Package knowledgetalk is the KnowledgeTalk signal server of seed 001 on
// cstalk's rooms and SFU: socket.io (Engine.IO 3 and 4) at /socket.io/,
// namespace /SignalServer, one event "knowledgetalk" carrying JSON objects
// with eventOp (requests and answers) or signalOp (notices and relays).
//
// Model. A licence (cpCode, authKey) names a company; CreateRoom under it
// stores an 8-digit room (Store) and RoomJoin puts the socket into that
// company's video room of kind "k" through video's front-end API
// (video.Server.Join and video.Participant). A room is a 1:1 call
// (useMediaSvr "N": the server relays the two peers' SDP) until a third
// member joins; from then on (changeView) it is an SFU call for good
// (useMediaSvr "Y"): every member publishes its camera, the server
// announces feeds (ReceiveFeed), offers a subscription per SendFeed and
// takes the members' complete, non-trickle SDP. Screen sharing is one
// reservation per room and, in an SFU call, a second publication.
//
// Room state that every member sees alike — members, names, mute states,
// the room's peak size that decides its mode, the screen reservation and
// the feeds — lives in the video room; a session only translates the
// room's events into this protocol, so the room can live on another node.
//
// Wire details, codes and the traps of the deployed client are in
// README.md beside this file.
package knowledgetalk
