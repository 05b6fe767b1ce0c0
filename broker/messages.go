package broker

import "strings"

// The ERROR frames the broker itself writes carry a stable English code in
// the message header, which clients and tests may match, and a readable
// body: Korean by default, English for a client whose CONNECT's
// accept-language prefers English (prefersEnglish). Refusals from the Application keep the
// application's own text.

// koreanText explains an ERROR code in Korean; "" when there is none.
func koreanText(code string) string {
	switch code {
	case "connect timeout":
		return "제한 시간 안에 CONNECT 프레임을 받지 못해 연결을 닫습니다."
	case "frame too large":
		return "프레임이 허용된 크기보다 큽니다."
	case "header line too long":
		return "헤더 한 줄이 허용된 길이보다 깁니다."
	case "heart-beat timeout":
		return "약속한 하트비트가 오지 않아 연결을 닫습니다."
	case "frame timeout":
		return "프레임이 제한 시간 안에 끝나지 않아 연결을 닫습니다."
	case "server busy":
		return "완성되지 않은 프레임이 서버 한도만큼 쌓여 있어 연결을 닫습니다. 프레임을 한 번에 보내 주세요."
	case "too many headers":
		return "프레임의 헤더가 너무 많습니다."
	case "too many subscriptions":
		return "한 연결이 가질 수 있는 구독 수를 넘었습니다."
	case "too many transactions":
		return "동시에 열 수 있는 트랜잭션 수를 넘었습니다."
	case "transaction too large":
		return "트랜잭션에 담을 수 있는 양을 넘었습니다."
	case "already connected":
		return "이미 연결되어 있습니다. CONNECT는 한 번만 보낼 수 있습니다."
	case "duplicate subscription id":
		return "이미 사용 중인 구독 id입니다."
	case "duplicate transaction":
		return "이미 열려 있는 트랜잭션입니다."
	case "invalid ack mode":
		return "ack 헤더는 auto, client, client-individual 중 하나여야 합니다."
	case "invalid command":
		return "알 수 없는 STOMP 명령입니다."
	case "invalid content-length":
		return "content-length 헤더가 올바른 숫자가 아닙니다."
	case "invalid frame format":
		return "프레임 형식이 올바르지 않습니다."
	case "invalid header escape":
		return "헤더에 허용되지 않은 이스케이프가 있습니다."
	case "invalid heart-beat":
		return "heart-beat 헤더 형식이 올바르지 않습니다."
	case "missing destination":
		return "destination 헤더가 필요합니다."
	case "missing id":
		return "id 헤더가 필요합니다."
	case "missing transaction":
		return "transaction 헤더가 필요합니다."
	case "not connected":
		return "먼저 CONNECT 프레임을 보내야 합니다."
	case "unknown message":
		return "전달되었고 아직 확인되지 않은 메시지가 아닙니다."
	case "unknown transaction":
		return "열려 있지 않은 트랜잭션입니다."
	case "slow consumer":
		return "메시지를 충분히 빨리 받지 못해 연결을 닫습니다."
	case "unknown destination":
		return "사용할 수 없는 destination입니다."
	case "internal error":
		return "서버가 프레임을 처리하지 못했습니다."
	case "unsupported protocol version":
		return "지원하지 않는 STOMP 버전입니다. 1.0, 1.1, 1.2를 지원합니다."
	}
	return ""
}

// prefersEnglish reads an accept-language value as the application does
// (chat.LangFrom): the first tag that is English or Korean decides, in the
// order given; without either the client gets Korean.
func prefersEnglish(acceptLanguage string) bool {
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "en"):
			return true
		case strings.HasPrefix(tag, "ko"):
			return false
		}
	}
	return false
}

// localized returns e with its body in the client's language.
func localized(e *protocolError, english bool) *protocolError {
	if english {
		return e
	}
	ko := koreanText(e.message)
	if ko == "" {
		return e // the application's or the operator's own text
	}
	detail := ko
	if e.detail != "" {
		detail += "\n(" + e.detail + ")"
	}
	return &protocolError{kind: e.kind, message: e.message, detail: detail}
}
