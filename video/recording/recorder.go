// Package recording records video calls: each participant's camera and
// microphone to a WebM file under a directory, one Recording per call in
// the store with its files, and the administrators' API that lists and
// serves them. It follows the video server's room events and taps the
// SFU's forwarded streams (video.Server.Tap); it never slows a call down,
// and a recording that fails ends, the call does not.
package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cstalk/cstalk/video"
)

// Recording is one recorded call: the video room, what it belongs to (a
// chat room or a guide session), when it began and ended, and one file
// per participant's stay.
type Recording struct {
	ID             int64
	CompanyID      int64
	VideoRoomID    string
	ChatRoomID     *int64
	GuideSessionID *int64
	StartedAt      time.Time
	EndedAt        *time.Time
	Files          []File
}

// File is one participant's recording in a call.
type File struct {
	ID          int64
	RecordingID int64
	UserID      string
	Name        string
	Customer    bool
	// Path is relative to the recordings directory.
	Path      string
	StartedAt time.Time
	EndedAt   *time.Time
	Bytes     int64
	Duration  time.Duration
	Status    Status
}

// ErrNotFound: no such recording (or not the company's).
var ErrNotFound = errors.New("recording not found")

// Store keeps recordings (package store implements it).
type Store interface {
	CreateRecording(ctx context.Context, r *Recording) error
	CreateRecordingFile(ctx context.Context, f *File) error
	FinishRecordingFile(ctx context.Context, f *File) error
	FinishRecording(ctx context.Context, id int64, ended time.Time) error
	// Recordings lists a company's recordings with their files, newest
	// first, those with an id below before (0: from the newest).
	Recordings(ctx context.Context, companyID, before int64, limit int) ([]Recording, error)
	// Recording is one of the company's recordings with its files;
	// ErrNotFound otherwise.
	Recording(ctx context.Context, companyID, id int64) (*Recording, error)
}

// Tapper is the SFU side (*video.Server).
type Tapper interface {
	Tap(key video.RoomKey, userID string, audio, video video.TrackSink) (func(), video.TapInfo, error)
}

// Config says where and how much.
type Config struct {
	// Dir holds the files (created 0700; files are 0600).
	Dir    string
	Limits Limits
	// Records says whether a room's calls are recorded (the company's
	// setting); asked once, when the room opens.
	Records func(ctx context.Context, room video.RoomKey) (bool, error)
	// Started is told once a room's recording has begun (chat writes the
	// notice in the room).
	Started func(ctx context.Context, room video.RoomKey, rec Recording)
	Now     func() time.Time
}

// DefaultLimits: 2 GiB and 4 hours a file.
var DefaultLimits = Limits{MaxBytes: 2 << 30, MaxDuration: 4 * time.Hour}

// storeTimeout bounds each store write of the recorder.
const storeTimeout = 10 * time.Second

// Recorder follows the video server's room events (HandleEvent) and
// records the rooms its Config says to.
type Recorder struct {
	cfg   Config
	store Store
	tap   Tapper
	log   *slog.Logger

	mu     sync.Mutex
	rooms  map[video.RoomKey]*roomRec
	closed bool
	wg     sync.WaitGroup // the files' writer goroutines
}

type roomRec struct {
	off   bool // the room is not recorded
	rec   Recording
	files map[string]*liveFile // by user id
}

// liveFile is a participant being recorded; done closes when its row is
// final.
type liveFile struct {
	row   File
	w     *fileWriter
	untap func()
	done  chan struct{}
}

// New makes a Recorder; the directory is created (0700) by the first
// recording.
func New(cfg Config, store Store, tap Tapper, log *slog.Logger) (*Recorder, error) {
	if cfg.Dir == "" || cfg.Records == nil || store == nil || tap == nil {
		return nil, errors.New("recording: a directory, a policy, a store and the SFU are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The directory is made when a recording needs it: a node that
	// records nothing needs no writable place for it.
	return &Recorder{cfg: cfg, store: store, tap: tap, log: log.With("component", "recording"),
		rooms: map[video.RoomKey]*roomRec{}}, nil
}

// Dir is where the files are.
func (r *Recorder) Dir() string { return r.cfg.Dir }

// HandleEvent starts and ends recordings as participants join and leave.
// The video server delivers its events one at a time, in the room's order.
func (r *Recorder) HandleEvent(ev video.Event) {
	switch ev.Kind {
	case video.EventJoined:
		r.joined(ev)
	case video.EventLeft:
		r.left(ev.Room, ev.User.UserID)
	case video.EventRoomClosed:
		r.roomClosed(ev.Room, ev.At)
	}
}

func (r *Recorder) joined(ev video.Event) {
	rr := r.room(ev.Room, ev.At)
	if rr == nil || rr.off {
		return
	}
	if err := r.startFile(rr, ev); err != nil {
		r.log.Error("participant not recorded", "room", ev.Room.String(), "user", ev.User.UserID, "err", err)
	}
}

// room returns the room's recording, deciding and creating it at the
// first join; nil when it could not be started.
func (r *Recorder) room(key video.RoomKey, at time.Time) *roomRec {
	r.mu.Lock()
	rr := r.rooms[key]
	closed := r.closed
	r.mu.Unlock()
	if rr != nil || closed {
		return rr
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	on, err := r.cfg.Records(ctx, key)
	if err != nil {
		r.log.Error("recording policy", "room", key.String(), "err", err)
		return nil
	}
	rr = &roomRec{off: !on, files: map[string]*liveFile{}}
	if on {
		company, _ := strconv.ParseInt(key.Company, 10, 64)
		rr.rec = Recording{CompanyID: company, VideoRoomID: key.ID(), StartedAt: at}
		if id, err := strconv.ParseInt(key.Name, 10, 64); err == nil {
			switch key.Kind {
			case video.RoomChat:
				rr.rec.ChatRoomID = &id
			case video.RoomGuide:
				rr.rec.GuideSessionID = &id
			}
		}
		if err := r.store.CreateRecording(ctx, &rr.rec); err != nil {
			r.log.Error("recording not started", "room", key.String(), "err", err)
			return nil
		}
		r.log.Info("recording started", "room", key.String(), "recording", rr.rec.ID)
		if r.cfg.Started != nil {
			r.cfg.Started(ctx, key, rr.rec)
		}
	}
	r.mu.Lock()
	r.rooms[key] = rr
	r.mu.Unlock()
	return rr
}

func (r *Recorder) startFile(rr *roomRec, ev video.Event) error {
	if old := rr.files[ev.User.UserID]; old != nil {
		r.endFile(old) // a rejoin replaced the participant
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	row := File{RecordingID: rr.rec.ID, UserID: ev.User.UserID, Name: ev.User.Name, Customer: ev.User.Customer,
		StartedAt: ev.At, Status: StatusRecording}
	if err := r.store.CreateRecordingFile(ctx, &row); err != nil {
		return fmt.Errorf("file row: %w", err)
	}
	// Named by ids only: user ids are whatever a front end chose.
	rel := filepath.Join("c"+strconv.FormatInt(rr.rec.CompanyID, 10), strconv.FormatInt(rr.rec.ID, 10),
		strconv.FormatInt(row.ID, 10)+".webm")
	row.Path = rel
	lf := &liveFile{row: row, done: make(chan struct{})}
	if err := os.MkdirAll(filepath.Join(r.cfg.Dir, filepath.Dir(rel)), 0o700); err != nil {
		lf.row.Status = StatusFailed
		r.finishRow(lf, Result{Status: StatusFailed, Err: err})
		return fmt.Errorf("directory: %w", err)
	}
	lf.w = newFileWriter(filepath.Join(r.cfg.Dir, rel), r.cfg.Limits, r.cfg.Now)
	untap, info, err := r.tap.Tap(ev.Room, ev.User.UserID, &lf.w.audioSink, &lf.w.videoSink)
	if err != nil {
		r.finishRow(lf, Result{Status: StatusEmpty})
		return fmt.Errorf("tap: %w", err)
	}
	lf.w.setVideoCodec(info.Video)
	lf.untap = untap
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		untap()
		r.finishRow(lf, Result{Status: StatusEmpty})
		return nil
	}
	rr.files[ev.User.UserID] = lf
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		lf.w.run()
		// The writer ended by itself (limit, failure) or was stopped:
		// either way the SFU stops feeding it and the row is final.
		untap()
		res := lf.w.result()
		if res.Err != nil {
			r.log.Error("recording failed; the call goes on", "room", ev.Room.String(), "user", ev.User.UserID, "err", res.Err)
		} else if res.Status == StatusLimit {
			r.log.Warn("recording reached its ceiling", "room", ev.Room.String(), "user", ev.User.UserID, "bytes", res.Bytes, "duration", res.Duration)
		}
		r.finishRow(lf, res)
	}()
	return nil
}

// finishRow writes the file's end and closes done.
func (r *Recorder) finishRow(lf *liveFile, res Result) {
	defer close(lf.done)
	now := r.cfg.Now()
	lf.row.EndedAt = &now
	lf.row.Status, lf.row.Bytes, lf.row.Duration = res.Status, res.Bytes, res.Duration
	if res.Status == StatusEmpty && res.Bytes == 0 {
		// Nothing was written: no file to keep.
		_ = os.Remove(filepath.Join(r.cfg.Dir, lf.row.Path))
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.FinishRecordingFile(ctx, &lf.row); err != nil {
		r.log.Error("recording file not finished in the store", "file", lf.row.ID, "err", err)
	}
}

// endFile stops a participant's recording and waits for its row.
func (r *Recorder) endFile(lf *liveFile) {
	lf.w.stop()
	<-lf.done
}

func (r *Recorder) left(key video.RoomKey, userID string) {
	r.mu.Lock()
	rr := r.rooms[key]
	var lf *liveFile
	if rr != nil {
		lf = rr.files[userID]
		delete(rr.files, userID)
	}
	r.mu.Unlock()
	if lf != nil {
		r.endFile(lf)
	}
}

func (r *Recorder) roomClosed(key video.RoomKey, at time.Time) {
	r.mu.Lock()
	rr := r.rooms[key]
	delete(r.rooms, key)
	r.mu.Unlock()
	if rr != nil {
		r.endRoom(rr, at)
	}
}

func (r *Recorder) endRoom(rr *roomRec, at time.Time) {
	if rr.off {
		return
	}
	r.mu.Lock()
	files := rr.files
	rr.files = map[string]*liveFile{}
	r.mu.Unlock()
	for _, lf := range files {
		r.endFile(lf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.FinishRecording(ctx, rr.rec.ID, at); err != nil {
		r.log.Error("recording not finished in the store", "recording", rr.rec.ID, "err", err)
	}
	r.log.Info("recording ended", "room", rr.rec.VideoRoomID, "recording", rr.rec.ID)
}

// Close ends every recording (the files are finished and the rows
// closed); later events are ignored.
func (r *Recorder) Close() {
	r.mu.Lock()
	r.closed = true
	rooms := r.rooms
	r.rooms = map[video.RoomKey]*roomRec{}
	r.mu.Unlock()
	now := r.cfg.Now()
	for _, rr := range rooms {
		r.endRoom(rr, now)
	}
	r.wg.Wait()
}
