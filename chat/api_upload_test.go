package chat_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "golang.org/x/image/webp"
)

// apiGopherWebP is golang.org/x/image's testdata/gopher-doc.1bpp.lossless.webp
// (BSD licence, The Go Authors): a real WebP for the upload tests, since Go
// has no WebP encoder.
const apiGopherWebP = "52494646b2010000574542505650384ca50100002f4ac018000f30fff33ffff31f7890246d7bda486ee6f10dc67d848125e930433b66fc8719960c279962269f604aeda16606d9d58abeaaffff153a4144ff19b86da4c8bbc738f00ac4a3af81df314a6259f7a6a0a5482297d1b7a015301714e2d71d2c85f1c08d719106e0ecb0b80e0a5557c90a202b53b18080923cfa524ffce28c4ff7c10237af83571807b615905b9681ada5c8f8b92341c5cb9613a56207834459a649e24555bda1d1c028ec28b16b8e19dc48ca7d8ebda083be183fc1ee93c1a74f04f6ea055e7c32c2e6309f3266739693c491cf837e428c8f2fe3276a6cccbdc135ac7344afdd45f462993d551c4bdc3b3e1847dfab2e07da8f7986ffa0b93a72e4e2274c0e2b79b987570a8d6e8455909830aeddc5c28205d80ff4790aafd82400ed8ff0629919655d2006ad41afb5203a6deaaca8ad5c1dcb4d71756f0991f93ac63117995410f8741d16be8e2a120ddf87575aad3ed2aafa10948279e54b1fdfa0bc64cbcaa33ae4f438e228739535f140a8ca6c0bec857822afb2e297dc382f66ef3327268d072a5da3023ba065636f22f8538bcdb7c8d6f12ac40868b6870000"

type apiUploadAnswer struct {
	Path         string `json:"path"`
	Thumbnail    string `json:"thumbnail"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnailUrl"`
	ContentType  string `json:"contentType"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Size         int    `json:"size"`
}

// apiFormFile is one part of an upload form.
type apiFormFile struct {
	field, filename, contentType string
	data                         []byte
}

// upload POSTs a multipart form with the given files and, when roomField is
// not empty, a roomId field. streamed hides the length (chunked body).
func (e *apiEnv) upload(header map[string]string, roomField string, streamed bool, files ...apiFormFile) (*http.Response, []byte) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.filename))
		h.Set("Content-Type", f.contentType)
		w, err := mw.CreatePart(h)
		if err != nil {
			e.t.Fatal(err)
		}
		w.Write(f.data)
	}
	if roomField != "" {
		mw.WriteField("roomId", roomField)
	}
	mw.Close()
	h := map[string]string{"Content-Type": mw.FormDataContentType()}
	for k, v := range header {
		h[k] = v
	}
	var body io.Reader = &buf
	if streamed {
		body = io.MultiReader(&buf)
	}
	return e.request(http.MethodPost, "/api/uploads", body, h)
}

func apiImageFile(name, contentType string, data []byte) apiFormFile {
	return apiFormFile{field: "file", filename: name, contentType: contentType, data: data}
}

func (e *apiEnv) mustUpload(header map[string]string, room int64, f apiFormFile) apiUploadAnswer {
	e.t.Helper()
	resp, body := e.upload(header, strconv.FormatInt(room, 10), false, f)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("upload %s: %d %s", f.filename, resp.StatusCode, body)
	}
	var a apiUploadAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		e.t.Fatalf("upload answer %s: %v", body, err)
	}
	return a
}

// fileAccess asks POST /api/files/access and returns the grant.
func (e *apiEnv) fileAccess(header map[string]string) (*http.Response, string) {
	e.t.Helper()
	resp, body := e.request(http.MethodPost, "/api/files/access", nil, header)
	if resp.StatusCode != http.StatusOK {
		return resp, ""
	}
	var a struct {
		Access    string    `json:"access"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Access == "" {
		e.t.Fatalf("file access answer %s: %v", body, err)
	}
	if want := e.clock.Now().Add(time.Hour); !a.ExpiresAt.Equal(want) {
		e.t.Errorf("grant expires %v, want %v", a.ExpiresAt, want)
	}
	return resp, a.Access
}

func apiCustomerHeader(company int64, number string) map[string]string {
	return map[string]string{"companyId": strconv.FormatInt(company, 10), "gasappMemberNumber": number}
}

func apiGradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

func apiPNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func apiJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// apiPNGBomb is a tiny PNG whose header claims w x h pixels.
func apiPNGBomb(t *testing.T, w, h uint32) []byte {
	t.Helper()
	data := apiPNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	// IHDR data starts after the 8-byte signature, length and type.
	ihdr := data[12 : 12+4+13]
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	binary.BigEndian.PutUint32(data[12+4+13:], crc32.ChecksumIEEE(ihdr))
	return data
}

var apiStoredPath = regexp.MustCompile(`^/files/(\d+)/(\d+)/([0-9a-f]{32})(\.thumb)?\.(png|jpg|gif|webp)$`)

// checkStored checks an upload answer against the disk and returns the
// decoded thumbnail.
func (e *apiEnv) checkStored(a apiUploadAnswer, company, room int64, ext, thumbExt string, original []byte) image.Image {
	e.t.Helper()
	prefix := fmt.Sprintf("/files/%d/%d/", company, room)
	m := apiStoredPath.FindStringSubmatch(a.Path)
	if m == nil || !strings.HasPrefix(a.Path, prefix) || m[5] != ext || m[4] != "" {
		e.t.Fatalf("path %q, want %s<random>.%s", a.Path, prefix, ext)
	}
	if want := prefix + m[3] + ".thumb." + thumbExt; a.Thumbnail != want {
		e.t.Fatalf("thumbnail %q, want %q", a.Thumbnail, want)
	}
	if !strings.HasPrefix(a.URL, a.Path+"?access=") || !strings.HasPrefix(a.ThumbnailURL, a.Thumbnail+"?access=") {
		e.t.Errorf("urls %q %q carry no grant", a.URL, a.ThumbnailURL)
	}
	onDisk, err := os.ReadFile(filepath.Join(e.uploadDir, strings.TrimPrefix(a.Path, "/files/")))
	if err != nil || !bytes.Equal(onDisk, original) || a.Size != len(original) {
		e.t.Fatalf("stored file differs from the upload (err %v, size %d)", err, a.Size)
	}
	thumbData, err := os.ReadFile(filepath.Join(e.uploadDir, strings.TrimPrefix(a.Thumbnail, "/files/")))
	if err != nil {
		e.t.Fatalf("thumbnail: %v", err)
	}
	thumb, format, err := image.Decode(bytes.NewReader(thumbData))
	if err != nil {
		e.t.Fatalf("decode thumbnail: %v", err)
	}
	if wantFormat := map[string]string{"png": "png", "jpg": "jpeg"}[thumbExt]; format != wantFormat {
		e.t.Errorf("thumbnail is %s, want %s", format, wantFormat)
	}
	return thumb
}

func apiDirEntries(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func testAPIUploads(t *testing.T, env *apiEnv) {
	customer, room := env.customerRoom(1, "3001", "한업로드")
	agent1 := apiBearer(env.token("agent1"))
	roomID := strconv.FormatInt(room.ID, 10)
	roomDir := filepath.Join(env.uploadDir, "1", roomID)

	t.Run("png", func(t *testing.T) {
		data := apiPNG(t, apiGradient(600, 300))
		a := env.mustUpload(agent1, room.ID, apiImageFile("사진.png", "image/png", data))
		if a.ContentType != "image/png" || a.Width != 600 || a.Height != 300 {
			t.Errorf("answer %+v", a)
		}
		// What an image MESSAGE of this room may carry, and what not.
		if !env.svc.IsUploadedImage(room, a.Path) || !env.svc.IsUploadedImage(room, a.Thumbnail) {
			t.Errorf("IsUploadedImage refuses %s / %s", a.Path, a.Thumbnail)
		}
		_, otherRoom := env.customerRoom(1, "3009", "다른방")
		for _, p := range []string{a.URL, "https://evil.example/x.png", "javascript:alert(1)", "/files/1/" + roomID + "/../x.png",
			strings.Replace(a.Path, ".png", ".jpg", 1), "/files/1/" + roomID + "/" + strings.Repeat("0", 32) + ".png"} {
			if env.svc.IsUploadedImage(room, p) {
				t.Errorf("IsUploadedImage accepts %q", p)
			}
		}
		if env.svc.IsUploadedImage(otherRoom, a.Path) {
			t.Errorf("IsUploadedImage accepts %s for another room", a.Path)
		}
		thumb := env.checkStored(a, 1, room.ID, "png", "png", data)
		if b := thumb.Bounds(); b.Dx() != 240 || b.Dy() != 120 {
			t.Errorf("thumbnail %v, want 240x120", b)
		}
	})
	t.Run("jpeg by header, whatever the name", func(t *testing.T) {
		data := apiJPEG(t, apiGradient(320, 800))
		h := map[string]string{"Authorization": agent1["Authorization"], "roomId": roomID}
		resp, body := env.upload(h, "", false, apiImageFile("photo.gif", "application/octet-stream", data))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var a apiUploadAnswer
		json.Unmarshal(body, &a)
		thumb := env.checkStored(a, 1, room.ID, "jpg", "jpg", data)
		if b := thumb.Bounds(); b.Dx() != 96 || b.Dy() != 240 {
			t.Errorf("thumbnail %v, want 96x240", b)
		}
	})
	t.Run("small gif keeps its size", func(t *testing.T) {
		var b bytes.Buffer
		pal := image.NewPaletted(image.Rect(0, 0, 10, 12), []color.Color{color.Black, color.White})
		if err := gif.Encode(&b, pal, nil); err != nil {
			t.Fatal(err)
		}
		a := env.mustUpload(agent1, room.ID, apiImageFile("a.gif", "image/gif", b.Bytes()))
		thumb := env.checkStored(a, 1, room.ID, "gif", "png", b.Bytes())
		if tb := thumb.Bounds(); tb.Dx() != 10 || tb.Dy() != 12 {
			t.Errorf("thumbnail %v, want 10x12", tb)
		}
	})
	t.Run("webp", func(t *testing.T) {
		data, _ := hex.DecodeString(apiGopherWebP)
		a := env.mustUpload(agent1, room.ID, apiImageFile("g.webp", "image/webp", data))
		if a.ContentType != "image/webp" {
			t.Errorf("content type %q", a.ContentType)
		}
		env.checkStored(a, 1, room.ID, "webp", "png", data)
	})
	t.Run("customer with headers", func(t *testing.T) {
		data := apiPNG(t, apiGradient(50, 40))
		a := env.mustUpload(apiCustomerHeader(1, "3001"), room.ID, apiImageFile("c.png", "image/png", data))
		env.checkStored(a, 1, room.ID, "png", "png", data)
		// The customer reads it back with the same headers.
		resp, body := env.request(http.MethodGet, a.Path, nil, apiCustomerHeader(1, "3001"))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Errorf("customer reads own upload: %d", resp.StatusCode)
		}
	})

	png := apiPNG(t, apiGradient(20, 20))
	refusals := []struct {
		name     string
		header   map[string]string
		room     string
		streamed bool
		files    []apiFormFile
		status   int
		message  string
	}{
		{"text disguised as png", agent1, roomID, false,
			[]apiFormFile{apiImageFile("evil.png", "image/png", []byte("just some text, not an image at all\n"))},
			http.StatusUnsupportedMediaType, "PNG, JPEG, GIF, WebP 이미지만 올릴 수 있습니다."},
		{"html disguised as png", agent1, roomID, false,
			[]apiFormFile{apiImageFile("x.png", "image/png", []byte("<html><script>alert(1)</script></html>"))},
			http.StatusUnsupportedMediaType, ""},
		{"svg", agent1, roomID, false,
			[]apiFormFile{apiImageFile("x.svg", "image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))},
			http.StatusUnsupportedMediaType, ""},
		{"truncated png", agent1, roomID, false,
			[]apiFormFile{apiImageFile("cut.png", "image/png", apiPNG(t, apiGradient(200, 200))[:300])},
			http.StatusUnsupportedMediaType, ""},
		{"png header over a jpeg sniff", agent1, roomID, false,
			[]apiFormFile{apiImageFile("mix.jpg", "image/jpeg", append([]byte("\xff\xd8\xff"), png[3:]...))},
			http.StatusUnsupportedMediaType, ""},
		{"decompression bomb", agent1, roomID, false,
			[]apiFormFile{apiImageFile("bomb.png", "image/png", apiPNGBomb(t, 50000, 50000))},
			http.StatusRequestEntityTooLarge, "이미지 해상도가 너무 큽니다. 2,500만 화소 이하로 줄여 주세요."},
		{"too large", agent1, roomID, false,
			[]apiFormFile{apiImageFile("big.png", "image/png", apiNoisePNG(t, 400))},
			http.StatusRequestEntityTooLarge, "파일이 너무 큽니다. 최대 0.25 MB까지 올릴 수 있습니다."},
		{"too large, streamed", agent1, roomID, true,
			[]apiFormFile{apiImageFile("big.png", "image/png", apiNoisePNG(t, 400))},
			http.StatusRequestEntityTooLarge, ""},
		{"too large in English", map[string]string{"Authorization": agent1["Authorization"], "Accept-Language": "en"}, roomID, false,
			[]apiFormFile{apiImageFile("big.png", "image/png", apiNoisePNG(t, 400))},
			http.StatusRequestEntityTooLarge, "The file is too large; the limit is 0.25 MB."},
		{"no file", agent1, roomID, false, nil, http.StatusBadRequest, "file 필드에 이미지를 첨부해 주세요."},
		{"empty file", agent1, roomID, false, []apiFormFile{apiImageFile("e.png", "image/png", nil)}, http.StatusBadRequest, ""},
		{"two files", agent1, roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png), apiImageFile("b.png", "image/png", png)},
			http.StatusBadRequest, ""},
		{"no room", agent1, "", false, []apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusBadRequest, ""},
		{"bad room", agent1, "abc", false, []apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusBadRequest, ""},
		{"missing room", agent1, "999999999", false, []apiFormFile{apiImageFile("a.png", "image/png", png)},
			http.StatusNotFound, "상담방을 찾을 수 없습니다."},
		{"member of another company", apiBearer(env.token("agent3")), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusNotFound, "상담방을 찾을 수 없습니다."},
		{"another customer", apiCustomerHeader(1, "3002"), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusNotFound, "상담방을 찾을 수 없습니다."},
		{"same number, another company", apiCustomerHeader(2, "3001"), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusNotFound, ""},
		{"unknown company", apiCustomerHeader(77, "3001"), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusUnauthorized, ""},
		{"bad member number", apiCustomerHeader(1, "12ab"), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusUnauthorized, ""},
		{"anonymous", nil, roomID, false, []apiFormFile{apiImageFile("a.png", "image/png", png)},
			http.StatusUnauthorized, "인증이 필요합니다."},
		{"forged token", apiBearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."), roomID, false,
			[]apiFormFile{apiImageFile("a.png", "image/png", png)}, http.StatusUnauthorized, ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			before := apiDirEntries(t, roomDir)
			resp, body := env.upload(c.header, c.room, c.streamed, c.files...)
			wantAPIError(t, resp, body, c.status, c.message)
			if after := apiDirEntries(t, roomDir); after != before {
				t.Errorf("a refused upload left files: %d entries, were %d", after, before)
			}
		})
	}
	t.Run("not multipart", func(t *testing.T) {
		resp, body := env.request(http.MethodPost, "/api/uploads", bytes.NewReader(png),
			map[string]string{"Authorization": agent1["Authorization"], "Content-Type": "image/png", "roomId": roomID})
		wantAPIError(t, resp, body, http.StatusUnsupportedMediaType, "")
	})
	t.Run("declared length over the limit", func(t *testing.T) {
		// Refused from the headers alone: the body is never read.
		req, _ := http.NewRequestWithContext(env.ctx, http.MethodPost, env.srv.URL+"/api/uploads", io.LimitReader(apiZeros{}, 8<<20))
		req.ContentLength = 8 << 20
		req.Header.Set("Authorization", agent1["Authorization"])
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		resp, err := env.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantAPIError(t, resp, body, http.StatusRequestEntityTooLarge, "")
	})
	t.Run("from another site", func(t *testing.T) {
		// The preflight a browser sends before a customer page elsewhere
		// uploads with the customer headers.
		resp, _ := env.request(http.MethodOptions, "/api/uploads", nil, map[string]string{
			"Origin":                         "https://app.example-gas.co.kr",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "companyid,gasappmembernumber,roomid",
		})
		allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(allowed, "gasappmembernumber") || !strings.Contains(allowed, "roomid") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		h := apiCustomerHeader(1, "3001")
		h["Origin"] = "https://app.example-gas.co.kr"
		resp, body := env.upload(h, roomID, false, apiImageFile("c.png", "image/png", apiPNG(t, apiGradient(30, 30))))
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("cross-site upload: %d %v %s", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("orientation", func(t *testing.T) { testAPIOrientation(t, env) })
	t.Run("ended room", func(t *testing.T) {
		_, ended := env.customerRoom(1, "3003", "끝난방")
		if _, _, err := env.store.EndRoom(env.ctx, ended.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, body := env.upload(agent1, strconv.FormatInt(ended.ID, 10), false, apiImageFile("a.png", "image/png", png))
		wantAPIError(t, resp, body, http.StatusConflict, "종료된 상담입니다.")
	})
	_ = customer
}

type apiZeros struct{}

func (apiZeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// apiNoisePNG is a side x side PNG of random pixels: it does not compress, so
// it is about side*side*4 bytes.
func apiNoisePNG(t *testing.T, side int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	return apiPNG(t, img)
}

func testAPIFiles(t *testing.T, env *apiEnv) {
	customer, room := env.customerRoom(1, "4001", "파일고객")
	_, otherRoom := env.customerRoom(1, "4002", "다른고객")
	agent1Login, loginResp := env.loginAs("agent1")
	agent1 := apiBearer(agent1Login.Token)
	data := apiPNG(t, apiGradient(300, 300))
	a := env.mustUpload(agent1, room.ID, apiImageFile("x.png", "image/png", data))
	other := env.mustUpload(agent1, otherRoom.ID, apiImageFile("y.png", "image/png", data))
	_ = customer

	get := func(path string, header map[string]string) (*http.Response, []byte) {
		return env.request(http.MethodGet, path, nil, header)
	}
	wantImage := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Content-Type") != "image/png" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("headers %v", h)
		}
		if !bytes.Equal(body, data) {
			t.Errorf("served %d bytes, not the upload", len(body))
		}
	}
	var fileCookie string
	for _, c := range loginResp.Cookies() {
		if c.Name == "cstalk_files" {
			fileCookie = c.Name + "=" + c.Value
		}
	}
	// POST /api/files/access sets the same cookie without a password.
	agent3Access, _ := env.fileAccess(apiBearer(env.token("agent3")))
	var agent3Cookie string
	for _, c := range agent3Access.Cookies() {
		if c.Name == "cstalk_files" {
			agent3Cookie = c.Name + "=" + c.Value
		}
	}
	_, customerGrant := env.fileAccess(apiCustomerHeader(1, "4001"))
	_, memberGrant := env.fileAccess(agent1)

	allowed := map[string]struct {
		path   string
		header map[string]string
	}{
		"bearer":                {a.Path, agent1},
		"colleague bearer":      {a.Path, apiBearer(env.token("agent2"))},
		"cookie":                {a.Path, map[string]string{"Cookie": fileCookie}},
		"url from upload":       {a.URL, nil},
		"member grant":          {a.Path + "?access=" + url.QueryEscape(memberGrant), nil},
		"customer headers":      {a.Path, apiCustomerHeader(1, "4001")},
		"customer grant":        {a.Path + "?access=" + url.QueryEscape(customerGrant), nil},
		"stale grant, good one": {a.Path + "?access=x", map[string]string{"Cookie": fileCookie}},
	}
	for name, c := range allowed {
		t.Run("allowed/"+name, func(t *testing.T) {
			resp, body := get(c.path, c.header)
			wantImage(t, resp, body)
		})
	}
	resp, body := get(a.Thumbnail, agent1)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("thumbnail: %d %v", resp.StatusCode, resp.Header)
	}
	if thumb, err := png.Decode(bytes.NewReader(body)); err != nil || thumb.Bounds().Dx() != 240 {
		t.Errorf("thumbnail decodes to %v, %v", thumb, err)
	}

	tampered := []byte(memberGrant)
	tampered[len(tampered)-3] ^= 1
	refused := map[string]struct {
		path   string
		header map[string]string
		status int
	}{
		"anonymous":               {a.Path, nil, http.StatusUnauthorized},
		"other company bearer":    {a.Path, apiBearer(env.token("agent3")), http.StatusNotFound},
		"other company cookie":    {a.Path, map[string]string{"Cookie": agent3Cookie}, http.StatusNotFound},
		"other company, its path": {strings.Replace(a.Path, "/files/1/", "/files/2/", 1), apiBearer(env.token("agent3")), http.StatusNotFound},
		"another customer":        {a.Path, apiCustomerHeader(1, "4002"), http.StatusNotFound},
		"customer of other room":  {other.Path + "?access=" + url.QueryEscape(customerGrant), nil, http.StatusNotFound},
		"same number, other co":   {a.Path, apiCustomerHeader(2, "4001"), http.StatusNotFound},
		"tampered grant":          {a.Path + "?access=" + url.QueryEscape(string(tampered)), nil, http.StatusUnauthorized},
		"bearer token as grant":   {a.Path + "?access=" + url.QueryEscape(agent1Login.Token), nil, http.StatusUnauthorized},
		"bearer token as cookie":  {a.Path, map[string]string{"Cookie": "cstalk_files=" + agent1Login.Token}, http.StatusUnauthorized},
		"file of another room":    {strings.Replace(other.Path, "/"+strconv.FormatInt(otherRoom.ID, 10)+"/", "/"+strconv.FormatInt(room.ID, 10)+"/", 1), agent1, http.StatusNotFound},
		"missing file":            {fmt.Sprintf("/files/1/%d/%032x.png", room.ID, 7), agent1, http.StatusNotFound},
		"missing room":            {fmt.Sprintf("/files/1/999999999/%032x.png", 7), agent1, http.StatusNotFound},
		"wrong extension":         {strings.TrimSuffix(a.Path, ".png") + ".jpg", agent1, http.StatusNotFound},
		"upper case name":         {strings.ToUpper(a.Path), agent1, http.StatusNotFound},
	}
	for name, c := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			resp, body := get(c.path, c.header)
			wantAPIError(t, resp, body, c.status, "")
		})
	}

	t.Run("expired grant", func(t *testing.T) {
		env.clock.Advance(time.Hour + time.Second)
		defer env.clock.Advance(-(time.Hour + time.Second))
		resp, body := get(a.URL, nil)
		wantAPIError(t, resp, body, http.StatusUnauthorized, "")
	})
	t.Run("range and head", func(t *testing.T) {
		resp, body := get(a.Path, map[string]string{"Authorization": agent1["Authorization"], "Range": "bytes=0-3"})
		if resp.StatusCode != http.StatusPartialContent || string(body) != "\x89PNG" {
			t.Errorf("range: %d %q", resp.StatusCode, body)
		}
		resp, body = env.request(http.MethodHead, a.Path, nil, agent1)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Errorf("head: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
		}
		resp, body = env.request(http.MethodDelete, a.Path, nil, agent1)
		wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "")
	})
	t.Run("traversal", func(t *testing.T) { testAPITraversal(t, env, room.ID, agent1) })
}

// testAPITraversal asks, as an authorized member, for paths that try to leave
// the room's directory or the upload directory.
func testAPITraversal(t *testing.T, env *apiEnv, roomID int64, auth map[string]string) {
	const secret = "TOP-SECRET-CONTENT"
	outside := filepath.Dir(env.uploadDir)
	roomDir := filepath.Join(env.uploadDir, "1", strconv.FormatInt(roomID, 10))
	for _, p := range []string{filepath.Join(outside, "secret.txt"), filepath.Join(env.uploadDir, "secret.txt"), filepath.Join(roomDir, "notes.txt")} {
		if err := os.WriteFile(p, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link planted in the upload directory under a valid-looking name.
	linkName := strings.Repeat("ab", 16) + ".png"
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(roomDir, linkName)); err != nil {
		t.Fatal(err)
	}
	r := strconv.FormatInt(roomID, 10)
	paths := []string{
		"/files/1/" + r + "/../../../secret.txt",
		"/files/1/" + r + "/../../secret.txt",
		"/files/1/" + r + "/notes.txt",
		"/files/1/" + r + "/..%2f..%2f..%2fsecret.txt",
		"/files/1/" + r + "/..%2F..%2Fsecret.txt",
		"/files/1/" + r + "/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
		"/files/1/" + r + "/..%5c..%5c..%5csecret.txt",
		"/files/1/" + r + "/" + linkName,
		"/files/1/" + r + "/" + strings.Repeat("ab", 16) + ".png%00.txt",
		"/files/1/" + r + "/" + strings.Repeat("ab", 16) + ".png/",
		"/files/1/..%2f" + r + "/notes.txt",
		"/files/..%2f..%2fsecret.txt/" + r + "/" + linkName,
		"/files/1/" + r + "/%252e%252e%252fsecret.txt",
		"/files/secret.txt",
		"/files/1/secret.txt",
		"/files//1/" + r + "/notes.txt",
	}
	client := *env.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range paths {
		req, err := http.NewRequestWithContext(env.ctx, http.MethodGet, env.srv.URL+p, nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for k, v := range auth {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), secret) {
			t.Errorf("GET %s: %d %q", p, resp.StatusCode, body)
		}
	}
}

// apiWithOrientation inserts an EXIF segment with the given orientation after
// a JPEG's SOI marker, in big- or little-endian TIFF order.
func apiWithOrientation(jpegData []byte, orientation uint16, bigEndian bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	tiff := []byte("II*\x00")
	if bigEndian {
		order, tiff = binary.BigEndian, []byte("MM\x00*")
	}
	tiff = order.AppendUint32(tiff, 8)
	tiff = order.AppendUint16(tiff, 2)
	// An unrelated tag first (ImageDescription, ASCII), then Orientation.
	tiff = order.AppendUint16(tiff, 0x010E)
	tiff = order.AppendUint16(tiff, 2)
	tiff = order.AppendUint32(tiff, 4)
	tiff = append(tiff, 'a', 'b', 'c', 0)
	tiff = order.AppendUint16(tiff, 0x0112)
	tiff = order.AppendUint16(tiff, 3)
	tiff = order.AppendUint32(tiff, 1)
	tiff = order.AppendUint16(tiff, orientation)
	tiff = append(tiff, 0, 0)
	tiff = order.AppendUint32(tiff, 0)
	payload := append([]byte("Exif\x00\x00"), tiff...)
	segment := binary.BigEndian.AppendUint16([]byte{0xFF, 0xE1}, uint16(len(payload)+2))
	segment = append(segment, payload...)
	out := append([]byte{}, jpegData[:2]...)
	out = append(out, segment...)
	return append(out, jpegData[2:]...)
}

// testAPIOrientation uploads a photo stored sideways (left half red, right
// half blue, 400x200) with each EXIF orientation and checks that the
// thumbnail comes out the way a browser shows the original.
func testAPIOrientation(t *testing.T, env *apiEnv) {
	_, room := env.customerRoom(1, "3100", "사진고객")
	agent1 := apiBearer(env.token("agent1"))
	src := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for y := range 200 {
		for x := range 400 {
			c := color.RGBA{230, 20, 20, 255}
			if x >= 200 {
				c = color.RGBA{20, 20, 230, 255}
			}
			src.Set(x, y, c)
		}
	}
	plain := apiJPEG(t, src)
	red := func(c color.Color) bool { r, _, b, _ := c.RGBA(); return r > 2*b }
	// Where the red half ends up, as seen upright.
	cases := []struct {
		orientation  uint16
		w, h         int
		redCorner    image.Point // a pixel that must be red (in a 240-px thumbnail)
		notRedCorner image.Point
	}{
		{1, 240, 120, image.Pt(5, 60), image.Pt(234, 60)},
		{2, 240, 120, image.Pt(234, 60), image.Pt(5, 60)},
		{3, 240, 120, image.Pt(234, 60), image.Pt(5, 60)},
		{4, 240, 120, image.Pt(5, 60), image.Pt(234, 60)},
		{5, 120, 240, image.Pt(60, 5), image.Pt(60, 234)},
		{6, 120, 240, image.Pt(60, 5), image.Pt(60, 234)},
		{7, 120, 240, image.Pt(60, 234), image.Pt(60, 5)},
		{8, 120, 240, image.Pt(60, 234), image.Pt(60, 5)},
	}
	for _, c := range cases {
		// Both TIFF byte orders, alternating: each upload costs a decode.
		for _, bigEndian := range []bool{c.orientation%2 == 0} {
			t.Run(fmt.Sprintf("%d/bigEndian=%v", c.orientation, bigEndian), func(t *testing.T) {
				data := apiWithOrientation(plain, c.orientation, bigEndian)
				a := env.mustUpload(agent1, room.ID, apiImageFile("o.jpg", "image/jpeg", data))
				thumb := env.checkStored(a, 1, room.ID, "jpg", "jpg", data)
				if b := thumb.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
					t.Fatalf("thumbnail %v, want %dx%d", b, c.w, c.h)
				}
				if wantW := 400 * c.w / 240; a.Width != wantW {
					t.Errorf("reported width %d, want %d as displayed", a.Width, wantW)
				}
				if !red(thumb.At(c.redCorner.X, c.redCorner.Y)) || red(thumb.At(c.notRedCorner.X, c.notRedCorner.Y)) {
					t.Errorf("red half is not at %v", c.redCorner)
				}
			})
		}
	}
	// Malformed EXIF is ignored, never an error.
	broken := apiWithOrientation(plain, 6, true)
	copy(broken[4+2+6:], "XX\x00*")
	a := env.mustUpload(agent1, room.ID, apiImageFile("b.jpg", "image/jpeg", broken))
	if a.Width != 400 || a.Height != 200 {
		t.Errorf("malformed EXIF: %dx%d", a.Width, a.Height)
	}
}
