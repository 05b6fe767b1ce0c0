package chat

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SweepUploads removes every upload (image and thumbnail) last written
// before olderThan that no stored message of its room refers to, and what
// an interrupted upload left behind, and reports how many files went. An
// image sent as a MESSAGE is never removed; one uploaded and never sent
// goes once it is old enough. Nodes sharing an upload directory may sweep
// it at the same time.
func (s *Service) SweepUploads(ctx context.Context, olderThan time.Time) (removed int, err error) {
	companies, err := os.ReadDir(s.cfg.UploadDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep uploads: %w", err)
	}
	for _, c := range companies {
		if _, ok := positiveID(c.Name()); !ok || !c.IsDir() {
			continue
		}
		rooms, err := os.ReadDir(filepath.Join(s.cfg.UploadDir, c.Name()))
		if err != nil {
			return removed, fmt.Errorf("sweep uploads of company %s: %w", c.Name(), err)
		}
		for _, r := range rooms {
			if err := ctx.Err(); err != nil {
				return removed, fmt.Errorf("sweep uploads: %w", err)
			}
			roomID, ok := positiveID(r.Name())
			if !ok || !r.IsDir() {
				continue
			}
			n, err := s.sweepRoomUploads(ctx, c.Name(), roomID, olderThan)
			removed += n
			if err != nil {
				return removed, err
			}
		}
	}
	return removed, nil
}

// sweepRoomUploads sweeps one room's directory.
func (s *Service) sweepRoomUploads(ctx context.Context, company string, roomID int64, olderThan time.Time) (int, error) {
	room := strconv.FormatInt(roomID, 10)
	dir := filepath.Join(s.cfg.UploadDir, company, room)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("sweep uploads of room %d: %w", roomID, err)
	}
	prefix := "/files/" + company + "/" + room + "/"
	// An image and its thumbnail share their first 32 characters and go
	// together: a message may name either.
	groups := make(map[string][]string)
	var paths []string
	removed := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(olderThan) {
			continue
		}
		name := e.Name()
		switch {
		case storedFileName.MatchString(name):
			groups[name[:32]] = append(groups[name[:32]], name)
			paths = append(paths, prefix+name)
		case strings.HasPrefix(name, ".upload-"):
			// writeFileAtomic's temporary file of a crashed node.
			if os.Remove(filepath.Join(dir, name)) == nil {
				removed++
			}
		}
	}
	if len(paths) == 0 {
		return removed, nil
	}
	referenced, err := s.store.ReferencedFiles(ctx, roomID, paths)
	if err != nil {
		return removed, fmt.Errorf("sweep uploads of room %d: %w", roomID, err)
	}
	for _, names := range groups {
		kept := false
		for _, name := range names {
			kept = kept || referenced[prefix+name]
		}
		if kept {
			continue
		}
		for _, name := range names {
			err := os.Remove(filepath.Join(dir, name))
			switch {
			case err == nil:
				removed++
			case !errors.Is(err, fs.ErrNotExist): // another node's sweep
				return removed, fmt.Errorf("sweep uploads of room %d: %w", roomID, err)
			}
		}
		s.log.Info("unreferenced upload removed", "roomId", roomID, "files", names)
	}
	return removed, nil
}

// UploadSweeper removes unreferenced uploads in the background (see
// SweepUploads); Stop ends it.
type UploadSweeper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartUploadSweeper sweeps every interval the uploads older than ttl,
// the first time at once, until Stop.
func (s *Service) StartUploadSweeper(ttl, interval time.Duration) *UploadSweeper {
	ctx, cancel := context.WithCancel(context.Background())
	sw := &UploadSweeper{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(sw.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			removed, err := s.SweepUploads(ctx, time.Now().Add(-ttl))
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.log.Error("sweep uploads", "err", err, "removed", removed)
			case removed > 0:
				s.log.Info("uploads swept", "removed", removed)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return sw
}

// Stop ends the sweeper and waits for a sweep under way to stop.
func (sw *UploadSweeper) Stop() {
	sw.cancel()
	<-sw.done
}
