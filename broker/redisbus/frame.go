package redisbus

import "errors"

// A message on a Redis channel is one byte holding the length of the
// publishing node's id, the id, then the payload untouched.
const maxNodeID = 255

func encode(nodeID string, payload []byte) []byte {
	frame := make([]byte, 0, 1+len(nodeID)+len(payload))
	frame = append(frame, byte(len(nodeID)))
	frame = append(frame, nodeID...)
	return append(frame, payload...)
}

// decode splits a frame. The payload is a fresh copy: deliver may keep it.
func decode(frame string) (origin string, payload []byte, err error) {
	if len(frame) == 0 {
		return "", nil, errors.New("empty frame")
	}
	n := int(frame[0])
	if n == 0 || len(frame) < 1+n {
		return "", nil, errors.New("frame shorter than its node id")
	}
	return frame[1 : 1+n], []byte(frame[1+n:]), nil
}
