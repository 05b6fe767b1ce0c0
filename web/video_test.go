package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVideoCallEndToEnd runs `cstalk serve --demo` and web/e2e/video.spec.cjs
// in Chromium with a fake camera: a counselor and a customer escalate their
// chat into a video call, each page decodes the other's video through the
// SFU, the customer hangs up and both chats show the call's system
// messages. Screenshots land in web/e2e/artifacts/.
func TestVideoCallEndToEnd(t *testing.T) {
	newBrowserEnv(t).runSpec(t, "video.spec.cjs", 120*time.Second)
}

// TestRecordedCallEndToEnd runs web/e2e/recording.spec.cjs: the
// administrator switches recording on, a counselor and a customer hold a
// call and both see it is recorded, and Chromium plays each participant's
// file from the administrator's page (it decodes frames, has the call's
// length and seeks). Then: the files are the server's alone (0600 in 0700
// directories), and only company 1's administrators may fetch them — a
// counselor gets 403, company 2's administrator 404, with a bearer token
// or a file access grant alike.
func TestRecordedCallEndToEnd(t *testing.T) {
	recDir := filepath.Join(t.TempDir(), "recordings")
	e := newBrowserEnv(t, "--recordings-dir", recDir)
	add := exec.CommandContext(e.ctx, e.bin, "member", "add", "--db", "sqlite:"+filepath.Join(e.dir, "cstalk.db"),
		"--company", "2", "--login", "admin2", "--password", "demo1234", "--admin")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("member add: %v\n%s", err, out)
	}
	e.runSpec(t, "recording.spec.cjs", 180*time.Second)

	files := 0
	err := filepath.WalkDir(recDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("recordings directory: %d files, %v", files, err)
	}

	base := "http://" + e.addr
	token := func(login string) string {
		t.Helper()
		res, err := http.Post(base+"/api/auth/login", "application/json",
			strings.NewReader(`{"loginName":"`+login+`","password":"demo1234"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Token string }
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Token == "" {
			t.Fatalf("login %s: %d %v", login, res.StatusCode, err)
		}
		return body.Token
	}
	get := func(path, bearer string, header ...string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	grant := func(bearer string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/api/files/access", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Access string }
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Access == "" {
			t.Fatalf("file access: %d %v", res.StatusCode, err)
		}
		return body.Access
	}
	admin1, admin2, agent1 := token("admin1"), token("admin2"), token("agent1")
	status, body := get("/api/admin/recordings", admin1)
	var list struct {
		Recordings []struct {
			ID           int64
			RoomID       *int64
			Participants []struct {
				URL    string
				Status string
				Bytes  int64
			}
		}
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list.Recordings) != 1 || len(list.Recordings[0].Participants) != 2 {
		t.Fatalf("admin1's recordings: %d %s", status, body)
	}
	file := list.Recordings[0].Participants[0]
	if file.Status != "done" || file.Bytes < 10_000 {
		t.Fatalf("file %+v", file)
	}
	one := "/api/admin/recordings/" + strconv.FormatInt(list.Recordings[0].ID, 10)
	for _, c := range []struct {
		path, bearer string
		want         int
	}{
		{"/api/admin/recordings", agent1, 403},
		{one, agent1, 403},
		{file.URL, agent1, 403},
		{file.URL + "?access=" + grant(agent1), "", 403},
		{one, admin2, 404},
		{file.URL, admin2, 404},
		{file.URL + "?access=" + grant(admin2), "", 404},
		{file.URL, "", 401},
		{file.URL + "?access=forged", "", 401},
		{file.URL + "?access=" + grant(admin1), "", 200},
	} {
		if got, b := get(c.path, c.bearer); got != c.want {
			t.Errorf("GET %s: %d, want %d (%.200s)", c.path, got, c.want, b)
		}
	}
	if status, body = get("/api/admin/recordings", admin2); status != 200 || !strings.Contains(string(body), `"recordings":[]`) {
		t.Errorf("company 2 lists %d %s", status, body)
	}
	if status, body = get(file.URL, admin1, "Range", "bytes=0-99"); status != http.StatusPartialContent || len(body) != 100 ||
		!strings.HasPrefix(string(body), "\x1a\x45\xdf\xa3") {
		t.Errorf("a range of the file: %d, %d bytes", status, len(body))
	}
}
