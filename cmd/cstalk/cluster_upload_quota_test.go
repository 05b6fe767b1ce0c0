package main

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// TestClusterUploadQuota: with --redis two nodes count a customer's uploads
// together: 20 sent at once, half to each node, store exactly
// --uploads-per-uploader of them and answer the rest 429.
func TestClusterUploadQuota(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	cfg.UploadsPerUploader = 5
	nodes := []*clusterNode{startClusterNode(t, "a", cfg), startClusterNode(t, "b", cfg)}
	for _, n := range nodes {
		waitReady(t, n.base, 200)
	}
	customer := dialChat(t, "customer 6001@a", nodes[0], customerHeaders("6001"))
	roomID, _ := customer.await(customer.private, "LOGINED", nil).M["roomId"].(string)
	if roomID == "" {
		t.Fatal("LOGINED without a roomId")
	}

	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 16, 16)))
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "meter.png")
	fw.Write(img.Bytes())
	mw.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Minute}
	var created, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, nodes[i%2].base+"/api/uploads", bytes.NewReader(form.Bytes()))
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("roomId", roomID)
			for k, v := range customerHeaders("6001") {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
				if !strings.Contains(string(body), `"code":429`) || resp.Header.Get("Retry-After") == "" {
					t.Errorf("429 without its body or Retry-After: %s", body)
				}
			default:
				t.Errorf("upload: status %d: %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	if created.Load() != 5 || refused.Load() != 15 {
		t.Fatalf("20 uploads at once over two nodes: %d stored, %d refused; want 5 and 15", created.Load(), refused.Load())
	}
	stored := 0
	filepath.WalkDir(cfg.UploadDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, ".thumb.") {
			stored++
		}
		return nil
	})
	if stored != 5 {
		t.Errorf("%d images on disk, want 5", stored)
	}
}
