// Package brokertest drives real STOMP clients against a running broker from
// Go tests: the npm JavaScript clients (sockjs-client with stompjs 2.x as the
// deployed apps use it, and @stomp/stompjs 7) through a Node driver process,
// and go-stomp over the raw WebSocket endpoint.
//
// It knows STOMP, SockJS and WebSocket, nothing of counseling, and never
// imports chat; chat and end-to-end tests build their scenarios on top of it.
package brokertest
