package guide_test

import (
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/guide"
)

// The video server closes guide rooms as it is.
var _ guide.VideoRooms = (*video.Server)(nil)
