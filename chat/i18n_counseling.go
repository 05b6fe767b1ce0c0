package chat

// counselingTexts are the texts of routing, transfers, typing, reply
// templates, transcripts and the team figures: refusals of STOMP events
// (no prefix), REST errors ("api_") and the labels of transcripts
// ("transcript_").
var counselingTexts = map[string]text{
	"transfer_forbidden": {"담당 상담사나 관리자만 상담을 전달할 수 있습니다.", "Only the room's counselor or an administrator may transfer it."},
	"transfer_no_member": {"전달할 상담사를 찾을 수 없습니다.", "The counselor to transfer to was not found."},
	"transfer_same":      {"이미 그 상담사가 담당하고 있습니다.", "That counselor already has this room."},
	"transfer_offline":   {"오프라인 상담사에게는 전달할 수 없습니다.", "You cannot transfer to an offline counselor."},
	"room_changed":       {"상담방의 담당자나 상태가 바뀌었습니다. 다시 확인해 주세요.", "The room's counselor or status changed meanwhile; please check again."},

	// System message stored in rooms (Korean, as every stored text).
	"system_transferred": {"상담이 %s 상담사에게 전달되었습니다.", "The conversation was transferred to counselor %s."},

	"api_bad_status_value": {"status는 AVAILABLE, AWAY, OFFLINE 중 하나여야 합니다.", "status must be AVAILABLE, AWAY or OFFLINE."},
	"api_bad_capacity":     {"capacity는 0부터 100 사이의 숫자여야 합니다.", "capacity must be a number from 0 to 100."},
	"api_bad_settings": {"autoAssign(true 또는 false)이나 recordCalls(true, false 또는 기본값 null)를 JSON으로 보내 주세요.",
		"Send autoAssign (true or false) or recordCalls (true, false, or null for the default) as JSON."},
	"api_member_not_found":   {"상담사를 찾을 수 없습니다.", "Counselor not found."},
	"api_canned_body":        {"shortcut(공백 없이 1~32자), title(100자 이하), text(1~4000자)를 JSON으로 보내 주세요.", "Send JSON with shortcut (1-32 characters, no spaces), title (at most 100) and text (1-4000)."},
	"api_canned_taken":       {"이미 사용 중인 단축어입니다.", "That shortcut is taken."},
	"api_canned_not_found":   {"상용구를 찾을 수 없습니다.", "Canned response not found."},
	"api_canned_full":        {"상용구는 회사당 500개까지 만들 수 있습니다.", "A company may have at most 500 canned responses."},
	"api_bad_format":         {"format은 text 또는 html이어야 합니다.", "format must be text or html."},
	"api_bad_period":         {"from과 to는 YYYY-MM-DD 날짜이며, from이 to보다 늦을 수 없고 기간은 최대 92일입니다.", "from and to are YYYY-MM-DD dates, from not after to, at most 92 days."},
	"transcript_title":       {"상담 기록", "Conversation transcript"},
	"transcript_company":     {"회사", "Company"},
	"transcript_room":        {"상담 번호", "Room"},
	"transcript_customer":    {"고객", "Customer"},
	"transcript_assignee":    {"담당 상담사", "Counselor"},
	"transcript_status":      {"상태", "Status"},
	"transcript_created":     {"시작", "Started"},
	"transcript_ended":       {"종료", "Ended"},
	"transcript_review":      {"평가", "Review"},
	"transcript_zone":        {"시간대", "Time zone"},
	"transcript_none":        {"없음", "none"},
	"transcript_note":        {"내부 메모", "internal note"},
	"transcript_system":      {"안내", "notice"},
	"transcript_deleted":     {"삭제된 메시지", "deleted message"},
	"transcript_image":       {"이미지", "image"},
	"transcript_notes_kept":  {"내부 메모 포함", "internal notes included"},
	"transcript_empty":       {"메시지가 없습니다.", "No messages."},
	"transcript_truncated":   {"이후 메시지는 생략되었습니다(최대 %d개).", "Later messages are left out (at most %d)."},
	"transcript_waiting":     {"대기", "waiting"},
	"transcript_in_progress": {"진행 중", "in progress"},
	"transcript_closed":      {"종료", "ended"},
}
