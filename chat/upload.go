package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for image.DecodeConfig and image.Decode
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

const (
	// thumbnailMaxSide is the longer side of a thumbnail, in pixels.
	thumbnailMaxSide = 240
	// maxUploadPixels refuses decompression bombs before decoding: a few
	// kilobytes of PNG can claim gigapixels. 25 MP covers phone cameras.
	maxUploadPixels = 25_000_000
	// multipartOverhead is what the form around the file may add.
	multipartOverhead = 64 << 10
	// defaultMaxUploadBytes applies when the configuration sets no limit.
	defaultMaxUploadBytes = 10 << 20
)

var (
	errNotImage      = errors.New("not a supported image")
	errTooManyPixels = errors.New("image has too many pixels")
	errDecodeTooBig  = errors.New("image takes too much memory to decode")
)

type uploadResponse struct {
	// Path and Thumbnail are what a MESSAGE's messageDetail and thumbnail
	// carry; URL and ThumbnailURL add a short-lived access grant for showing
	// the image at once, e.g. from a page on another site.
	Path         string `json:"path"`
	Thumbnail    string `json:"thumbnail"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnailUrl"`
	ContentType  string `json:"contentType"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Size         int    `json:"size"`
}

// upload stores one image of a room (multipart field "file", room as the
// roomId header or form field) with its thumbnail. The uploader is a member
// of the room's company or the room's customer.
func (a *api) upload(w http.ResponseWriter, r *http.Request) {
	m, company, customer, ok := a.caller(w, r)
	if !ok {
		return
	}
	var reader fileReader
	if m != nil {
		reader = fileReader{CompanyID: m.CompanyID, MemberID: m.ID}
	} else {
		reader = fileReader{CompanyID: company.ID, CustomerID: customer.ID}
	}
	// The uploader's count is spent before its body is read: past it, not
	// even the body costs anything.
	quota := a.s.cfg.Uploads
	uploader := uploaderKey(reader)
	if !a.quotaAllows(w, r)(quota.uploaderCount(r.Context(), uploader)) {
		return
	}
	maxBytes := a.s.cfg.MaxUploadBytes
	if maxBytes <= 0 {
		maxBytes = defaultMaxUploadBytes
	}
	if r.ContentLength > maxBytes+multipartOverhead {
		a.fail(w, r, http.StatusRequestEntityTooLarge, "api_upload_too_large", megabytes(maxBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBytes+multipartOverhead)
	// A client trickling its body must not hold the handler forever (the
	// server has no overall read timeout: STOMP streams share it).
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.s.cfg.UploadTimeout)); err != nil {
		a.log.Debug("upload read deadline", "err", err)
	}

	// A roomId header lets us refuse before reading the body.
	var room *Room
	if v := r.Header.Get("roomId"); v != "" {
		if room = a.uploadRoom(w, r, reader, v); room == nil {
			return
		}
		if !a.quotaAllows(w, r)(quota.roomCount(r.Context(), room.ID)) {
			return
		}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		a.fail(w, r, http.StatusUnsupportedMediaType, "api_upload_not_multipart")
		return
	}
	var data []byte
	var formRoom string
	gotFile := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			a.uploadReadFailed(w, r, err, maxBytes)
			return
		}
		switch part.FormName() {
		case "file":
			if gotFile {
				part.Close()
				a.fail(w, r, http.StatusBadRequest, "api_upload_one_file")
				return
			}
			gotFile = true
			data, err = io.ReadAll(io.LimitReader(part, maxBytes+1))
			if err == nil && int64(len(data)) > maxBytes {
				err = &http.MaxBytesError{Limit: maxBytes}
			}
		case "roomId":
			var b []byte
			b, err = io.ReadAll(io.LimitReader(part, 32))
			formRoom = strings.TrimSpace(string(b))
		default:
			_, err = io.Copy(io.Discard, part)
		}
		part.Close()
		if err != nil {
			a.uploadReadFailed(w, r, err, maxBytes)
			return
		}
	}
	if len(data) == 0 {
		a.fail(w, r, http.StatusBadRequest, "api_upload_no_file")
		return
	}
	if room == nil {
		if formRoom == "" {
			a.fail(w, r, http.StatusBadRequest, "api_upload_no_room")
			return
		}
		if room = a.uploadRoom(w, r, reader, formRoom); room == nil {
			return
		}
		if !a.quotaAllows(w, r)(quota.roomCount(r.Context(), room.ID)) {
			return
		}
	}
	// Bytes are spent before decoding, so a refused upload costs no
	// decode either.
	if !a.quotaAllows(w, r)(quota.bytes(r.Context(), uploader, room.ID, int64(len(data)))) {
		return
	}

	img, err := a.processImage(r.Context(), data)
	switch {
	case errors.Is(err, errNotImage):
		a.log.Info("upload refused", "reason", err, "roomId", room.ID, "size", len(data))
		a.fail(w, r, http.StatusUnsupportedMediaType, "api_upload_not_image")
		return
	case errors.Is(err, errTooManyPixels):
		a.log.Info("upload refused", "reason", err, "roomId", room.ID, "size", len(data))
		a.fail(w, r, http.StatusRequestEntityTooLarge, "api_upload_too_many_pixels")
		return
	case errors.Is(err, errDecodeTooBig):
		a.log.Warn("upload refused", "reason", err, "roomId", room.ID, "size", len(data))
		a.fail(w, r, http.StatusRequestEntityTooLarge, "api_upload_decode_too_big")
		return
	case err != nil:
		a.internal(w, r, "process upload", err)
		return
	}

	companyDir, roomDir := strconv.FormatInt(room.CompanyID, 10), strconv.FormatInt(room.ID, 10)
	dir := filepath.Join(a.s.cfg.UploadDir, companyDir, roomDir)
	base := randomFileBase()
	name, thumbName := base+img.ext, base+".thumb"+img.thumbExt
	if err := os.MkdirAll(dir, 0o750); err != nil {
		a.internal(w, r, "create upload dir", err)
		return
	}
	// The thumbnail first: a path handed out always has its thumbnail.
	if err := writeFileAtomic(dir, thumbName, img.thumb); err != nil {
		a.internal(w, r, "store thumbnail", err)
		return
	}
	if err := writeFileAtomic(dir, name, data); err != nil {
		os.Remove(filepath.Join(dir, thumbName))
		a.internal(w, r, "store upload", err)
		return
	}

	prefix := "/files/" + companyDir + "/" + roomDir + "/"
	resp := uploadResponse{
		Path:        prefix + name,
		Thumbnail:   prefix + thumbName,
		ContentType: img.contentType,
		Width:       img.width,
		Height:      img.height,
		Size:        len(data),
	}
	resp.URL, resp.ThumbnailURL = resp.Path, resp.Thumbnail
	var subject string
	if m != nil {
		subject = memberSubject(m)
	} else {
		subject = customerSubject(customer)
	}
	grant, err := a.fileGrant(subject, reader.CompanyID, a.now().Add(fileGrantTTL))
	if err == nil {
		q := "?access=" + url.QueryEscape(grant)
		resp.URL += q
		resp.ThumbnailURL += q
	} else {
		a.log.Error("sign file grant", "err", err)
	}
	a.log.Info("upload stored", "companyId", room.CompanyID, "roomId", room.ID, "path", resp.Path,
		"contentType", img.contentType, "size", len(data), "byMember", m != nil)
	a.writeJSON(w, http.StatusCreated, resp)
}

// IsUploadedImage reports whether p is the path of an image (or thumbnail)
// stored for room by POST /api/uploads: what an image MESSAGE may carry as
// messageDetail and thumbnail, so no message can point clients at another
// room's files or at anything outside cstalk.
func (s *Service) IsUploadedImage(room *Room, p string) bool {
	prefix := "/files/" + strconv.FormatInt(room.CompanyID, 10) + "/" + strconv.FormatInt(room.ID, 10) + "/"
	name, ok := strings.CutPrefix(p, prefix)
	if !ok || !storedFileName.MatchString(name) {
		return false
	}
	root, err := os.OpenRoot(s.cfg.UploadDir)
	if err != nil {
		return false
	}
	defer root.Close()
	info, err := root.Lstat(strings.TrimPrefix(p, "/files/"))
	return err == nil && info.Mode().IsRegular()
}

// uploadRoom loads the room an upload is for and checks the uploader may use
// it. Rooms the uploader may not see are answered like missing ones.
func (a *api) uploadRoom(w http.ResponseWriter, r *http.Request, reader fileReader, roomID string) *Room {
	id, ok := positiveID(strings.TrimSpace(roomID))
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_room_id")
		return nil
	}
	room, err := a.s.store.Room(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return nil
	case err != nil:
		a.internal(w, r, "load room", err)
		return nil
	case !reader.mayRead(room):
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return nil
	case room.Status == StatusEnded:
		a.fail(w, r, http.StatusConflict, "api_room_ended")
		return nil
	}
	return room
}

// quotaAllows answers the outcome of an upload quota's spend: true when
// it was spent, else it has answered 429 with Retry-After, or 503 when the
// count could not be read.
func (a *api) quotaAllows(w http.ResponseWriter, r *http.Request) func(time.Duration, error) bool {
	return func(wait time.Duration, err error) bool {
		switch {
		case errors.Is(err, ErrUploadQuota):
			a.log.Warn("upload quota exceeded", "remote", r.RemoteAddr, "err", err)
			a.tooMany(w, r, wait, "api_upload_quota")
			return false
		case err != nil:
			a.unavailable(w, r, "upload quota", err)
			return false
		}
		return true
	}
}

func (a *api) uploadReadFailed(w http.ResponseWriter, r *http.Request, err error, maxBytes int64) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		a.fail(w, r, http.StatusRequestEntityTooLarge, "api_upload_too_large", megabytes(maxBytes))
		return
	}
	a.log.Info("upload unreadable", "err", err)
	a.fail(w, r, http.StatusBadRequest, "api_upload_unreadable")
}

func megabytes(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MB"
}

// processedImage is an accepted upload: its type as sniffed (never as the
// client named it) and its thumbnail.
type processedImage struct {
	contentType, ext string
	width, height    int
	thumb            []byte
	thumbExt         string
}

// processImage accepts PNG, JPEG, GIF and WebP only when the content says so
// and the decoder agrees, refuses images with too many pixels before
// decoding them, and makes the thumbnail.
func (a *api) processImage(ctx context.Context, data []byte) (*processedImage, error) {
	out := &processedImage{contentType: http.DetectContentType(data)}
	var format string
	switch out.contentType {
	case "image/png":
		format, out.ext = "png", ".png"
	case "image/jpeg":
		format, out.ext = "jpeg", ".jpg"
	case "image/gif":
		format, out.ext = "gif", ".gif"
	case "image/webp":
		format, out.ext = "webp", ".webp"
	default:
		return nil, fmt.Errorf("%w: content is %s", errNotImage, out.contentType)
	}
	cfg, decoded, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotImage, err)
	}
	if decoded != format {
		return nil, fmt.Errorf("%w: sniffed %s, decoded %s", errNotImage, format, decoded)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %dx%d", errNotImage, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxUploadPixels {
		return nil, fmt.Errorf("%w: %dx%d", errTooManyPixels, cfg.Width, cfg.Height)
	}
	// Pixels alone say little: a 16-bit PNG takes twice the memory of an
	// 8-bit one, a progressive JPEG five times that of a baseline one.
	if need := decodeBytes(cfg, format, data); need > a.s.cfg.MaxDecodeBytes {
		return nil, fmt.Errorf("%w: %dx%d %s needs %d bytes", errDecodeTooBig, cfg.Width, cfg.Height, format, need)
	}
	out.width, out.height = cfg.Width, cfg.Height

	if err := a.s.decodes.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.s.decodes.release()
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		// A valid header over a truncated or corrupt body.
		return nil, fmt.Errorf("%w: %v", errNotImage, err)
	}
	orientation := 1
	if format == "jpeg" {
		orientation = jpegOrientation(data)
	}
	if orientation >= 5 {
		// Turned a quarter: as displayed, the sides swap.
		out.width, out.height = out.height, out.width
	}
	out.thumb, out.thumbExt, err = thumbnail(img, format, orientation)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// thumbnail scales img to fit thumbnailMaxSide and turns it upright by its
// EXIF orientation (browsers show the original upright, so the thumbnail
// must match): JPEG for photos, PNG for everything that may have
// transparency.
func thumbnail(img image.Image, format string, orientation int) ([]byte, string, error) {
	b := img.Bounds()
	tw, th := thumbnailSize(b.Dx(), b.Dy())
	// *image.RGBA as destination keeps x/image/draw on its fast paths.
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	dst = orient(dst, orientation)
	var buf bytes.Buffer
	if format == "jpeg" {
		if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 82}); err != nil {
			return nil, "", fmt.Errorf("encode thumbnail: %w", err)
		}
		return buf.Bytes(), ".jpg", nil
	}
	if err := png.Encode(&buf, dst); err != nil {
		return nil, "", fmt.Errorf("encode thumbnail: %w", err)
	}
	return buf.Bytes(), ".png", nil
}

// thumbnailSize fits w x h into thumbnailMaxSide, keeping its proportions.
func thumbnailSize(w, h int) (tw, th int) {
	if w <= thumbnailMaxSide && h <= thumbnailMaxSide {
		return w, h
	}
	if w >= h {
		return thumbnailMaxSide, max(1, h*thumbnailMaxSide/w)
	}
	return max(1, w*thumbnailMaxSide/h), thumbnailMaxSide
}

// orient applies an EXIF orientation (1-8) to img.
func orient(img *image.RGBA, orientation int) *image.RGBA {
	if orientation < 2 || orientation > 8 {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if orientation >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range h {
		for x := range w {
			var dx, dy int
			switch orientation {
			case 2: // mirrored
				dx, dy = w-1-x, y
			case 3: // upside down
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored upside down
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // needs a quarter turn clockwise
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // needs a quarter turn counter-clockwise
				dx, dy = y, w-1-x
			}
			si, di := img.PixOffset(b.Min.X+x, b.Min.Y+y), dst.PixOffset(dx, dy)
			copy(dst.Pix[di:di+4], img.Pix[si:si+4])
		}
	}
	return dst
}

// jpegOrientation reads the EXIF orientation (1-8) of a JPEG; 1 (upright)
// when there is none or the metadata is malformed. Only the segments before
// the image data are looked at.
func jpegOrientation(data []byte) int {
	orientation := 1
	jpegSegments(data, func(marker byte, segment []byte) bool {
		if marker == 0xE1 && bytes.HasPrefix(segment, []byte("Exif\x00\x00")) {
			orientation = exifOrientation(segment[6:])
			return false
		}
		return true
	})
	return orientation
}

// exifOrientation finds tag 0x0112 in IFD0 of an EXIF TIFF structure.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var order binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(order.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 1
	}
	entries := int64(order.Uint16(tiff[ifd:]))
	for k := range entries {
		e := ifd + 2 + 12*k
		if e+12 > int64(len(tiff)) {
			return 1
		}
		if order.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		if order.Uint16(tiff[e+2:]) != 3 { // SHORT
			return 1
		}
		if o := int(order.Uint16(tiff[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 1
	}
	return 1
}

// randomFileBase names a stored file: 128 random bits, so paths cannot be
// guessed (access is still checked on every read).
func randomFileBase() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// writeFileAtomic makes name appear in dir complete or not at all.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o640)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
