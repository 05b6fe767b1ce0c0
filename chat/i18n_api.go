package chat

// apiTexts are the messages of the REST API's JSON errors.
var apiTexts = map[string]text{
	"unauthorized": {"인증이 필요합니다.", "Authentication required."},
}
