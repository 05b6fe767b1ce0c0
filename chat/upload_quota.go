package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// UploadQuota bounds what one uploader (a customer, or a counselor) and one
// room may upload in each Window: PerUploader uploads of at most
// BytesPerUploader bytes together, and PerRoom uploads of at most
// BytesPerRoom bytes. A limit of 0 is no limit. Uploads are counted before
// their body is read (when the room is known by then) and bytes as soon as
// the body has arrived, before anything is decoded or stored; an upload
// refused later, or by another of the limits, stays counted. The counts live
// on the Limiter, so with chat/redislimit every node spends the same
// allowance and concurrent uploads never pass it.
type UploadQuota struct {
	Limiter          Limiter
	Window           time.Duration
	PerUploader      int64
	BytesPerUploader int64
	PerRoom          int64
	BytesPerRoom     int64
}

// DefaultUploadQuota allows an uploader 20 uploads and 50 MiB, and a room 60
// uploads and 150 MiB, per 10 minutes, counted on this node: a customer
// sending photos of a meter never notices, a script filling the disk stops
// after five 10 MB files.
func DefaultUploadQuota() UploadQuota {
	return UploadQuota{
		Limiter:          NewMemoryLimiter(nil),
		Window:           10 * time.Minute,
		PerUploader:      20,
		BytesPerUploader: 50 << 20,
		PerRoom:          60,
		BytesPerRoom:     150 << 20,
	}
}

// ErrUploadQuota is the refusal of an upload past a quota.
var ErrUploadQuota = errors.New("chat: upload quota exceeded")

// quotaTake is one limit an upload spends from.
type quotaTake struct {
	key      string
	n, limit int64
}

// spend takes each of takes in turn; it wraps ErrUploadQuota, with the
// time until the refusing window ends, at the first that has no room left.
// Any other error means a count could not be read: nothing may be stored.
func (q UploadQuota) spend(ctx context.Context, takes ...quotaTake) (retryAfter time.Duration, err error) {
	for _, t := range takes {
		if t.limit <= 0 {
			continue
		}
		ok, wait, err := q.Limiter.Take(ctx, t.key, t.n, t.limit, q.Window)
		if err != nil {
			return 0, err
		}
		if !ok {
			return wait, fmt.Errorf("%w: %s", ErrUploadQuota, t.key)
		}
	}
	return 0, nil
}

// uploaderKey names the uploader of reader in the limiter's keys.
func uploaderKey(reader fileReader) string {
	if reader.MemberID != 0 {
		return "upload:member:" + strconv.FormatInt(reader.MemberID, 10)
	}
	return "upload:customer:" + strconv.FormatInt(reader.CustomerID, 10)
}

func roomQuotaKey(roomID int64) string { return "upload:room:" + strconv.FormatInt(roomID, 10) }

// uploaderCount spends one upload of the uploader.
func (q UploadQuota) uploaderCount(ctx context.Context, uploader string) (time.Duration, error) {
	return q.spend(ctx, quotaTake{uploader + ":n", 1, q.PerUploader})
}

// roomCount spends one upload of the room.
func (q UploadQuota) roomCount(ctx context.Context, roomID int64) (time.Duration, error) {
	return q.spend(ctx, quotaTake{roomQuotaKey(roomID) + ":n", 1, q.PerRoom})
}

// bytes spends size bytes of the uploader and of the room.
func (q UploadQuota) bytes(ctx context.Context, uploader string, roomID, size int64) (time.Duration, error) {
	return q.spend(ctx, quotaTake{uploader + ":b", size, q.BytesPerUploader},
		quotaTake{roomQuotaKey(roomID) + ":b", size, q.BytesPerRoom})
}
