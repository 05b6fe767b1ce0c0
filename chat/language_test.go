package chat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/chat"
)

// The broker's own ERROR frames and chat's reasons read accept-language
// the same way (chat.LangFrom).
func TestBrokerErrorsFollowTheSameLanguage(t *testing.T) {
	e := newEnv(t)
	for _, accept := range []string{"en", "fr, en;q=0.8", " en-GB", "ko-KR,en;q=0.9", "fr", ""} {
		c := e.mustDial("lang "+accept, map[string]string{"companyId": "1", "gasappMemberNumber": "5901", "accept-language": accept})
		c.subscribePrivate()
		c.await(c.private, "LOGINED")
		// A SEND outside pub/ and sub/ is refused by the broker itself.
		if err := c.conn.Send("/topic/x", "text/plain", []byte("x")); err != nil {
			t.Fatalf("send: %v", err)
		}
		var frameErr *stomp.Error
		for frameErr == nil {
			select {
			case msg := <-c.private.C:
				if msg != nil && msg.Err != nil && !errors.As(msg.Err, &frameErr) {
					t.Fatalf("%q: %v", accept, msg.Err)
				}
			case <-timeAfter():
				t.Fatalf("%q: no ERROR frame", accept)
			}
		}
		body := string(frameErr.Frame.Body)
		korean := strings.Contains(body, "destination입니다")
		if wantKorean := chat.LangFrom(accept) == chat.Korean; korean != wantKorean {
			t.Fatalf("accept-language %q: ERROR body %q, chat reads it as Korean=%v", accept, body, wantKorean)
		}
	}
}
