package chat

// eventTexts are the reasons and system texts of STOMP events. Texts with
// verbs (%s, %d) are formats filled in by the caller.
var eventTexts = map[string]text{
	"internal":    {"일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", "A temporary error occurred. Please try again shortly."},
	"unavailable": {"서버가 잠시 응답할 수 없습니다. 잠시 후 다시 시도해 주세요.", "The server cannot answer right now. Please try again shortly."},

	// Refusals (ERROR data.reason).
	"unauthorized":            {"인증에 실패했습니다. 다시 로그인해 주세요.", "Authentication failed. Please sign in again."},
	"already_subscribed":      {"개인 채널은 한 번만 구독할 수 있습니다.", "The private channel can be subscribed only once."},
	"lobby_forbidden":         {"이 대기실을 구독할 권한이 없습니다.", "You may not subscribe to this lobby."},
	"destination_forbidden":   {"허용되지 않은 채널입니다.", "This destination is not allowed."},
	"send_forbidden":          {"이 채널로는 직접 보낼 수 없습니다. pub/socket/message를 사용해 주세요.", "You cannot send to this destination directly; use pub/socket/message."},
	"room_not_found":          {"상담방을 찾을 수 없습니다.", "The room was not found."},
	"room_forbidden":          {"이 상담방에 참여할 권한이 없습니다.", "You may not use this room."},
	"no_room":                 {"상담방이 지정되지 않았습니다. roomId를 보내거나 상담방을 먼저 구독해 주세요.", "No room given: send a roomId or subscribe to a room first."},
	"room_ended":              {"종료된 상담입니다.", "This consultation has ended."},
	"room_taken":              {"다른 상담사가 이미 배정된 상담입니다.", "Another counselor already has this room."},
	"body_too_large":          {"요청이 너무 큽니다.", "The request is too large."},
	"rate_limited":            {"요청이 너무 빠릅니다. 잠시 후 다시 보내 주세요.", "Too many requests; please send again in a moment."},
	"invalid_utf8":            {"UTF-8 형식이 아닌 문자가 포함되어 있습니다.", "The request is not valid UTF-8."},
	"malformed_json":          {"요청 형식(JSON)이 올바르지 않습니다.", "The request is not valid JSON."},
	"missing_field":           {"필수 항목(%s)이 없습니다.", "The required field %s is missing."},
	"invalid_field":           {"항목(%s)의 값이 올바르지 않습니다.", "The field %s has an invalid value."},
	"invalid_number":          {"숫자여야 하는 항목에 올바르지 않은 값이 있습니다.", "A numeric field has an invalid value."},
	"unknown_event":           {"알 수 없는 이벤트(%s)입니다.", "Unknown event %s."},
	"message_too_long":        {"메시지가 너무 깁니다(최대 %d바이트).", "The message is too long (at most %d bytes)."},
	"members_only":            {"상담사만 사용할 수 있는 기능입니다.", "Only counselors may do this."},
	"customers_only":          {"고객만 사용할 수 있는 기능입니다.", "Only customers may do this."},
	"speaker_mismatch":        {"speakerId가 본인과 일치하지 않습니다.", "speakerId does not match you."},
	"message_not_found":       {"메시지를 찾을 수 없습니다.", "The message was not found."},
	"delete_forbidden":        {"본인이 보낸 메시지만 삭제할 수 있습니다.", "You may delete only your own messages."},
	"system_delete_forbidden": {"시스템 메시지는 관리자만 삭제할 수 있습니다.", "Only an administrator may delete a system message."},
	"invalid_review":          {"평점은 1부터 5 사이여야 합니다.", "The review score must be between 1 and 5."},
	"review_unassigned":       {"상담사가 배정된 후에 평가할 수 있습니다.", "You can review once a counselor has taken the consultation."},
	"history_too_long":        {"대화 기록이 너무 깁니다(최대 %d개).", "The history is too long (at most %d items)."},

	// System messages stored in rooms.
	"system_assigned":   {"%s 상담사가 상담을 시작합니다.", "Counselor %s has joined the conversation."},
	"start_working":     {"상담사가 곧 연결됩니다. 잠시만 기다려 주세요.", "A counselor will be with you shortly."},
	"start_after_hours": {"지금은 상담 시간이 아닙니다. 남겨 주신 문의는 상담 시간에 답변드리겠습니다.", "We are outside business hours. We will answer your message during business hours."},
	"start_lunch":       {"지금은 점심시간입니다. 점심시간이 끝나면 바로 답변드리겠습니다.", "It is lunch time. We will answer as soon as lunch is over."},
	"chatbot_name":      {"챗봇", "Chatbot"},
}
