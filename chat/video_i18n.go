package chat

// videoTexts are the reasons and system texts of video calls in chat rooms
// (see video.go); Lang.T reads them after the other catalogs.
var videoTexts = map[string]text{
	"video_unavailable":        {"영상 상담을 사용할 수 없습니다.", "Video calls are not available."},
	"video_customer_forbidden": {"영상 상담은 상담사만 시작할 수 있습니다.", "Only a counselor may start a video call."},

	"video_invited_by_member":   {"%s 상담사가 영상 상담을 요청했습니다.", "Counselor %s started a video call."},
	"video_invited_by_customer": {"%s 고객님이 영상 상담을 요청했습니다.", "%s asked for a video call."},
	"video_declined":            {"%s님이 영상 상담을 거절했습니다.", "%s declined the video call."},
	"video_joined":              {"%s님이 영상 상담에 참여했습니다.", "%s joined the video call."},
	"video_left":                {"%s님이 영상 상담에서 나갔습니다.", "%s left the video call."},
	"video_recording":           {"이 영상 상담은 녹화되고 있습니다.", "This video call is being recorded."},
	"video_ended":               {"영상 상담이 종료되었습니다. (통화 시간 %s)", "The video call ended (%s)."},
}
