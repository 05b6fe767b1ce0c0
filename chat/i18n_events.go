package chat

// eventTexts are the reasons and system texts of STOMP events.
var eventTexts = map[string]text{
	"internal": {"일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", "A temporary error occurred. Please try again shortly."},
}
