package chat

// apiTexts are the messages of the REST API's JSON errors. Keys start with
// "api_" so they never collide with eventTexts (which Lang.T searches first).
// Texts with a %s take the argument named in the comment.
var apiTexts = map[string]text{
	"api_unauthorized":       {"인증이 필요합니다.", "Authentication required."},
	"api_bad_credentials":    {"아이디 또는 비밀번호가 올바르지 않습니다.", "The login name or password is incorrect."},
	"api_login_throttled":    {"로그인 시도가 너무 많습니다. 잠시 후 다시 시도해 주세요.", "Too many login attempts. Please try again later."},
	"api_login_body":         {"loginName과 password를 JSON으로 보내 주세요.", "Send loginName and password as JSON."},
	"api_not_found":          {"요청한 항목을 찾을 수 없습니다.", "Not found."},
	"api_room_not_found":     {"상담방을 찾을 수 없습니다.", "Room not found."},
	"api_method_not_allowed": {"허용되지 않는 요청 방식입니다.", "Method not allowed."},
	"api_server_error":       {"일시적인 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.", "A temporary error occurred. Please try again shortly."},
	"api_unavailable":        {"서버가 잠시 응답할 수 없습니다. 잠시 후 다시 시도해 주세요.", "The server cannot answer right now. Please try again shortly."},
	"api_bad_status":         {"status는 WAITING, IN_PROGRESS, ENDED 중 하나여야 합니다.", "status must be WAITING, IN_PROGRESS or ENDED."},
	"api_bad_limit":          {"limit는 1 이상의 숫자여야 합니다.", "limit must be a positive number."},
	"api_bad_before":         {"before는 메시지 번호여야 합니다.", "before must be a message id."},
	"api_bad_room_id":        {"roomId는 상담방 번호여야 합니다.", "roomId must be a room id."},
	"api_room_ended":         {"종료된 상담입니다.", "This consultation has ended."},
	"api_room_taken":         {"다른 상담사가 이미 배정된 상담입니다.", "Another counselor already has this room."},
	"api_bad_query_id":       {"queryId는 findReadyState, findIngState, findCloseState 중 하나여야 합니다.", "queryId must be findReadyState, findIngState or findCloseState."},
	"api_bad_member_number":  {"gasappMemberNumber는 30자리 이하의 숫자여야 합니다.", "gasappMemberNumber must be a number of at most 30 digits."},
	"api_contracts_failed":   {"회사 시스템에서 계약 정보를 가져오지 못했습니다.", "The company's system did not return the contracts."},
	"api_contracts_timeout":  {"회사 시스템이 제시간에 응답하지 않았습니다.", "The company's system did not answer in time."},
	"api_contracts_busy":     {"계약 정보 요청이 많습니다. 잠시 후 다시 시도해 주세요.", "Too many contract requests; please try again shortly."},
	// %s: the size limit, e.g. "10 MB".
	"api_upload_too_large":       {"파일이 너무 큽니다. 최대 %s까지 올릴 수 있습니다.", "The file is too large; the limit is %s."},
	"api_upload_too_many_pixels": {"이미지 해상도가 너무 큽니다. 2,500만 화소 이하로 줄여 주세요.", "The image has too many pixels; the limit is 25 megapixels."},
	"api_upload_decode_too_big":  {"이미지를 처리하는 데 메모리가 너무 많이 듭니다. 해상도나 색 깊이(16비트)를 줄여 주세요.", "The image takes too much memory to process; reduce its resolution or colour depth (16-bit)."},
	"api_upload_quota":           {"업로드가 너무 많습니다. 잠시 후 다시 시도해 주세요.", "Too many uploads; please try again later."},
	"api_upload_not_image":       {"PNG, JPEG, GIF, WebP 이미지만 올릴 수 있습니다.", "Only PNG, JPEG, GIF and WebP images can be uploaded."},
	"api_upload_not_multipart":   {"multipart/form-data 형식으로 보내 주세요.", "Send the upload as multipart/form-data."},
	"api_upload_no_file":         {"file 필드에 이미지를 첨부해 주세요.", "Attach the image in the file field."},
	"api_upload_one_file":        {"한 번에 한 파일만 올릴 수 있습니다.", "Upload one file at a time."},
	"api_upload_no_room":         {"roomId를 헤더나 폼 필드로 보내 주세요.", "Send roomId as a header or form field."},
	"api_upload_unreadable":      {"업로드를 끝까지 읽지 못했습니다. 다시 시도해 주세요.", "The upload could not be read completely; please try again."},
}
