package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/chat/redislimit"
)

// uploadForm is a multipart body of one file for room.
func uploadForm(t *testing.T, room int64, data []byte) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, err := mw.CreateFormFile("file", "image.png")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	mw.WriteField("roomId", strconv.FormatInt(room, 10))
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// uploadBurst sends n uploads of data for room at once, round robin to the
// servers at bases, and returns how many were stored (201) and refused by
// a quota (429); any other answer fails the test. It may run in a
// goroutine of the test: it never calls Fatal.
func uploadBurst(t *testing.T, bases []string, header map[string]string, room int64, data []byte, n int) (created, refused int) {
	form, contentType := uploadForm(t, room, data)
	var mu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Minute}
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, bases[i%len(bases)]+"/api/uploads", bytes.NewReader(form))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", contentType)
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case http.StatusCreated:
				created++
			case http.StatusTooManyRequests:
				refused++
				var e struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				}
				if json.Unmarshal(body, &e) != nil || e.Code != 429 || e.Message != "업로드가 너무 많습니다. 잠시 후 다시 시도해 주세요." {
					t.Errorf("429 body %s", body)
				}
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("429 Retry-After %q", resp.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("upload: status %d: %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	return created, refused
}

func storedUploads(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, ".thumb.") {
			n++
		}
		return nil
	})
	return n
}

// TestUploadQuotas: uploads sent all at once never pass a quota. A customer
// gets its 5 uploads out of 20, a counselor in the same room the 3 left of
// the room's 8; past them 429 with Retry-After, in English on request. Byte
// quotas the same: 3 files of the customer's 3.5, then 2 of the counselor's
// in the room's 5.5.
func TestUploadQuotas(t *testing.T) {
	dsn := func() string { return "sqlite:" + filepath.Join(t.TempDir(), "cstalk.db") }
	img := apiPNG(t, apiGradient(64, 64))
	size := int64(len(img))
	t.Run("counts", func(t *testing.T) {
		env := newAPIEnv(t, dsn(), func(c *chat.Config) {
			c.Uploads = chat.UploadQuota{Limiter: chat.NewMemoryLimiter(nil), Window: time.Hour, PerUploader: 5, PerRoom: 8}
		})
		customer, room := env.customerRoom(1, "7001", "한도")
		cust := apiCustomerHeader(1, customer.GasappMemberNumber)
		if created, refused := uploadBurst(t, []string{env.srv.URL}, cust, room.ID, img, 20); created != 5 || refused != 15 {
			t.Fatalf("customer, 20 at once: %d stored, %d refused; want 5 and 15", created, refused)
		}
		agent := apiBearer(env.token("agent1"))
		if created, refused := uploadBurst(t, []string{env.srv.URL}, agent, room.ID, img, 20); created != 3 || refused != 17 {
			t.Fatalf("counselor in the same room, 20 at once: %d stored, %d refused; want 3 and 17", created, refused)
		}
		if n := storedUploads(t, env.uploadDir); n != 8 {
			t.Errorf("%d files stored, want 8", n)
		}
		h := map[string]string{"Accept-Language": "en"}
		for k, v := range cust {
			h[k] = v
		}
		resp, body := env.upload(h, strconv.FormatInt(room.ID, 10), false, apiImageFile("a.png", "image/png", img))
		wantAPIError(t, resp, body, http.StatusTooManyRequests, "Too many uploads; please try again later.")
		// Another customer, another room: allowances of their own.
		other, otherRoom := env.customerRoom(1, "7002", "다른")
		env.mustUpload(apiCustomerHeader(1, other.GasappMemberNumber), otherRoom.ID, apiImageFile("b.png", "image/png", img))
	})
	t.Run("bytes", func(t *testing.T) {
		env := newAPIEnv(t, dsn(), func(c *chat.Config) {
			c.Uploads = chat.UploadQuota{Limiter: chat.NewMemoryLimiter(nil), Window: time.Hour,
				BytesPerUploader: 3*size + size/2, BytesPerRoom: 5*size + size/2}
		})
		customer, room := env.customerRoom(1, "7003", "용량")
		if created, refused := uploadBurst(t, []string{env.srv.URL}, apiCustomerHeader(1, customer.GasappMemberNumber), room.ID, img, 10); created != 3 || refused != 7 {
			t.Fatalf("customer, 10 at once: %d stored, %d refused; want 3 and 7", created, refused)
		}
		if created, refused := uploadBurst(t, []string{env.srv.URL}, apiBearer(env.token("agent1")), room.ID, img, 10); created != 2 || refused != 8 {
			t.Fatalf("counselor in the same room, 10 at once: %d stored, %d refused; want 2 and 8", created, refused)
		}
	})
}

// TestUploadQuotaTwoNodes: two nodes (services on one store) counting on
// one Redis give a customer
// its 5 uploads, whichever node the 20 sent at once reach.
func TestUploadQuotaTwoNodes(t *testing.T) {
	rds := redistest.Start(t)
	env := newAPIEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "cstalk.db"))
	var bases []string
	for range 2 {
		limiter, err := redislimit.New(context.Background(), redislimit.Options{URL: rds.URL(), Prefix: "cstalk:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { limiter.Close() })
		cfg := env.svc.Config()
		cfg.Uploads = chat.UploadQuota{Limiter: limiter, Window: time.Hour, PerUploader: 5}
		node, err := chat.New(cfg, env.store, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(conformant(t, node.APIHandler()))
		t.Cleanup(srv.Close)
		bases = append(bases, srv.URL)
	}
	customer, room := env.customerRoom(1, "7004", "두노드")
	if created, refused := uploadBurst(t, bases, apiCustomerHeader(1, customer.GasappMemberNumber), room.ID, apiPNG(t, apiGradient(32, 32)), 20); created != 5 || refused != 15 {
		t.Fatalf("20 at once over two nodes: %d stored, %d refused; want 5 and 15", created, refused)
	}
}

// apiPNG16 is a w x h PNG of 16 bits a channel.
func apiPNG16(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA64(x, y, color.NRGBA64{uint16(x * 16), uint16(y * 1000), 0x8000, 0xFFFF})
		}
	}
	return apiPNG(t, img)
}

// TestUploadDecodeMemory: the decode bound counts a 16-bit PNG at the 8
// bytes a pixel it decodes to. 4000 x 40 with a 1 MiB bound: at 4 bytes it
// would pass (640,000 bytes and the scaler's 307,200), at 8 it does not;
// the same image in 8 bits does.
func TestUploadDecodeMemory(t *testing.T) {
	env := newAPIEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "cstalk.db"), func(c *chat.Config) {
		c.MaxDecodeBytes = 1 << 20
	})
	customer, room := env.customerRoom(1, "7005", "깊이")
	header := apiCustomerHeader(1, customer.GasappMemberNumber)
	deep := apiPNG16(t, 4000, 40)
	resp, body := env.upload(header, strconv.FormatInt(room.ID, 10), false, apiImageFile("deep.png", "image/png", deep))
	wantAPIError(t, resp, body, http.StatusRequestEntityTooLarge, "이미지를 처리하는 데 메모리가 너무 많이 듭니다. 해상도나 색 깊이(16비트)를 줄여 주세요.")
	if n := storedUploads(t, env.uploadDir); n != 0 {
		t.Fatalf("%d files stored after the refusal", n)
	}
	env.mustUpload(header, room.ID, apiImageFile("flat.png", "image/png", apiPNG(t, apiGradient(4000, 40))))
}

// TestUploadSweeper: the sweeper removes an old upload no message refers
// to (image and thumbnail) and what an interrupted upload left, and keeps
// an old one a stored message shows (by its thumbnail alone, too) and a
// fresh one not sent yet; Stop returns once it has stopped.
func TestUploadSweeper(t *testing.T) {
	for _, b := range apiBackends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAPIEnv(t, b.dsn(t))
			customer, room := env.customerRoom(1, "7006", "청소")
			header := apiCustomerHeader(1, customer.GasappMemberNumber)
			file := apiImageFile("a.png", "image/png", apiPNG(t, apiGradient(300, 200)))
			sent, byThumb, unsent, fresh := env.mustUpload(header, room.ID, file), env.mustUpload(header, room.ID, file),
				env.mustUpload(header, room.ID, file), env.mustUpload(header, room.ID, file)
			speaker, err := env.store.CustomerSpeaker(env.ctx, customer)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []chat.Message{
				{Detail: sent.Path, Thumbnail: sent.Thumbnail},
				{Detail: "/files/elsewhere.png", Thumbnail: byThumb.Thumbnail},
			} {
				m.RoomID, m.CompanyID, m.SpeakerID, m.SpeakerName, m.Type, m.IsCustomer = room.ID, 1, speaker.ID, "청소", 1, true
				if _, _, err := env.store.AppendMessage(env.ctx, &m); err != nil {
					t.Fatal(err)
				}
			}
			onDisk := func(p string) string { return filepath.Join(env.uploadDir, strings.TrimPrefix(p, "/files/")) }
			roomDir := filepath.Dir(onDisk(sent.Path))
			leftover := filepath.Join(roomDir, ".upload-123456")
			if err := os.WriteFile(leftover, []byte("half"), 0o640); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-48 * time.Hour)
			for _, p := range []string{onDisk(sent.Path), onDisk(sent.Thumbnail), onDisk(byThumb.Path), onDisk(byThumb.Thumbnail),
				onDisk(unsent.Path), onDisk(unsent.Thumbnail), leftover} {
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
			}

			sweeper := env.svc.StartUploadSweeper(24*time.Hour, time.Hour)
			exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
			deadline := time.Now().Add(time.Minute)
			for exists(onDisk(unsent.Path)) || exists(onDisk(unsent.Thumbnail)) || exists(leftover) {
				if time.Now().After(deadline) {
					t.Fatal("the unreferenced upload is still there after a minute")
				}
				time.Sleep(10 * time.Millisecond) // polling the disk: nothing to await
			}
			sweeper.Stop()
			for _, p := range []string{sent.Path, sent.Thumbnail, byThumb.Path, byThumb.Thumbnail, fresh.Path, fresh.Thumbnail} {
				if !exists(onDisk(p)) {
					t.Errorf("%s was removed", p)
				}
			}
			resp, _ := env.request(http.MethodGet, sent.URL, nil, nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the sent image: status %d after the sweep", resp.StatusCode)
			}
			// A sweep that finds nothing more removes nothing.
			if n, err := env.svc.SweepUploads(env.ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 0 {
				t.Errorf("second sweep: %d removed, %v", n, err)
			}
		})
	}
}
