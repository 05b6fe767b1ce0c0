package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/store/storetest"
)

// deployedKeyPrefix is company 1's legacy key prefix in this test: the
// customer page sends secretKey = prefix + today's YYYYMMDD in Seoul.
const deployedKeyPrefix = "E2E_"

// TestDeployedConsolePages runs pages of the deployed CS-talk kind (a login
// page, the counselor console and the gas app's customer page, written with
// vue 2.5.16, axios 0.17.1, sockjs-client 1.0.0 and stompjs 2.3.3:
// e2e/deployed/) in Chromium against `cstalk serve --demo`, on one node with
// SQLite, one node with MariaDB, and two nodes sharing MariaDB and Redis with
// the console on one and the customer on the other: e2e/deployed.spec.cjs.
// Company 1 gets its legacy key prefix and a contracts endpoint of this test
// with `cstalk company set` while the servers run.
func TestDeployedConsolePages(t *testing.T) {
	ctx, bin := newBrowserBinary(t, 5*time.Minute, t.TempDir())
	contracts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("key") != "e2e" || r.URL.Query().Get("companyId") != "1" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"contractNo":"C-%s","product":"주택난방"}]`, r.URL.Query().Get("gasappMemberNumber"))
	}))
	defer contracts.Close()

	type deployedCase struct {
		Name     string `json:"name"`
		Console  string `json:"console"`
		Customer string `json:"customer"`
	}
	var cases []deployedCase
	// node starts `cstalk serve --demo` on db (and redis, when given) in a
	// directory of its own.
	node := func(db string, redis string) string {
		dir := t.TempDir()
		args := []string{"--db", db}
		if redis != "" {
			args = append(args, "--redis", redis)
		}
		_, addr := startServer(ctx, t, bin, dir, "127.0.0.1:0", args...)
		return "http://" + addr
	}
	configure := func(db string) {
		set := exec.CommandContext(ctx, bin, "company", "set", "--db", db, "--id", "1",
			"--legacy-key-prefix", deployedKeyPrefix, "--contracts-url", contracts.URL+"/contracts?key=e2e")
		if out, err := set.CombinedOutput(); err != nil {
			t.Fatalf("cstalk company set: %v\n%s", err, out)
		}
	}

	sqlite := "sqlite:" + filepath.Join(t.TempDir(), "cstalk.db")
	one := node(sqlite, "")
	configure(sqlite)
	cases = append(cases, deployedCase{"sqlite", one, one})

	mariadb, _ := storetest.MariaDB(t, "web")
	one = node(mariadb, "")
	configure(mariadb)
	cases = append(cases, deployedCase{"mariadb", one, one})

	shared, _ := storetest.MariaDB(t, "web_cluster")
	redis := redistest.Start(t)
	a := node(shared, redis.URL())
	b := node(shared, redis.URL())
	configure(shared)
	cases = append(cases, deployedCase{"two-nodes", a, b})

	casesJSON, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	runSpec(ctx, t, "deployed.spec.cjs", 3*time.Minute,
		"CSTALK_CASES="+string(casesJSON),
		"CSTALK_SECRET_KEY="+deployedKeyPrefix+time.Now().In(seoul).Format("20060102"),
		"CSTALK_ARTIFACTS="+artifactsDir(t))
}
