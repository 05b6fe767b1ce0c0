// Package web serves cstalk's pages: the counselor console at /, the
// customer chat page at /customer (what the gas app opens in a web view),
// the administrator's view at /admin and the guide page at /guide (users
// and mates of timed video guides). The pages are built from web/src by
// esbuild (npm run build) into web/dist, which is committed and embedded,
// so the binary needs neither npm nor any other site at run time.
package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
)

//go:embed dist
var dist embed.FS

// contentSecurityPolicy allows only the pages' own bundles: no inline
// script or style, no other origin, no framing. connect-src 'self' covers
// the SockJS XHR and WebSocket transports of the same host.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pageDocument returns the document in dist of a page path.
func pageDocument(p string) (string, bool) {
	switch p {
	case "/":
		return "console.html", true
	case "/customer":
		return "customer.html", true
	case "/admin":
		return "admin.html", true
	case "/guide":
		return "guide.html", true
	}
	return "", false
}

// Handler serves the pages and their assets; every other path is 404.
func Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "web")
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		// dist is embedded at build time; a missing one cannot compile.
		panic(err)
	}
	assets := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if doc, ok := pageDocument(r.URL.Path); ok {
			servePage(w, r, root, doc, log)
			return
		}
		if clean := path.Clean(r.URL.Path); clean == r.URL.Path && path.Dir(clean) == "/assets" {
			// Bundles keep their names across releases: browsers revalidate.
			w.Header().Set("Cache-Control", "no-cache")
			assets.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

func servePage(w http.ResponseWriter, r *http.Request, root fs.FS, doc string, log *slog.Logger) {
	body, err := fs.ReadFile(root, doc)
	if err != nil {
		log.Error("read page", "page", doc, "err", err)
		http.Error(w, "page unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
