package knowledgetalk_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/knowledgetalk/kttest"
	"github.com/cstalk/cstalk/video/videotest"
)

// Licences of the test companies 1 and 2.
var (
	lic1 = [2]string{"KP-TEST-0001", "key-one"}
	lic2 = [2]string{"KP-TEST-0002", "key-two"}
)

type harness struct {
	t     *testing.T
	store *store.Store
	video *video.Server
	kt    *kt.Server
	http  *httptest.Server
	// mux serves the front end at /socket.io/; a test may add routes.
	mux *http.ServeMux
	reg *prometheus.Registry
}

func testLog() *slog.Logger {
	if os.Getenv("KT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a video server and the KnowledgeTalk front end on a fresh
// SQLite store with companies 1 and 2 and their licences.
func start(t *testing.T, mutate func(*kt.Config, *video.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kt.db"), testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i, lic := range [][2]string{lic1, lic2} {
		c := &chat.Company{Name: fmt.Sprintf("회사 %d", i+1)}
		if err := st.SaveCompany(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveKTLicence(ctx, &kt.Licence{CPCode: lic[0], CompanyID: c.ID, AuthKeyHash: kt.HashAuthKey(lic[1]), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	vcfg := video.DefaultConfig()
	vcfg.IncludeLoopback = true
	vcfg.Interfaces = []string{"lo"}
	kcfg := kt.DefaultConfig()
	if mutate != nil {
		mutate(&kcfg, &vcfg)
	}
	reg := prometheus.NewRegistry()
	refuse := video.AuthorizerFunc(func(context.Context, string, string, string, string) (video.Identity, error) {
		return video.Identity{}, video.ErrUnauthorized
	})
	vs, err := video.New(vcfg, refuse, reg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kt.New(kcfg, vs, st, testLog())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", ks.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = ks.Close()
		_ = vs.Close()
		hs.Close()
	})
	return &harness{t: t, store: st, video: vs, kt: ks, http: hs, mux: mux, reg: reg}
}

// metric adds up every series of the metric name whose labels include
// the label=value pairs of want.
func (h *harness) metric(name string, want ...string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(want); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	videotest.CheckFor(t, timeout, fn)
}

type (
	msg = kttest.Msg
	bot = kttest.Bot
)

func str(m msg, k string) string { return kttest.Str(m, k) }
func op(m msg) string            { return kttest.Op(m) }

func (h *harness) bot(name, gen string, lic [2]string) *bot {
	h.t.Helper()
	return kttest.NewBot(h.t, h.http.URL, name, gen, lic)
}

func keys(m any) map[string]bool { return kttest.Keys(m) }
