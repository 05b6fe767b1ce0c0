// Package openapitest checks an HTTP API against its OpenAPI document in
// tests: the document must be valid, and every answer a wrapped handler
// gives must be one the document describes.
package openapitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// HTML answers (transcripts) are checked like plain text: the document
// describes them as strings.
func init() {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.RegisteredBodyDecoder("text/plain"))
}

// Router loads spec, fails t unless it is a valid OpenAPI document, and
// returns a router over its operations (on any host).
func Router(t testing.TB, spec []byte) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("not a valid OpenAPI document: %v", err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	return router
}

// Conformant wraps next so that every answer is checked against spec: its
// status must be documented for the operation and its body must match the
// schema; a request the handler accepted (2xx) must match its schema too.
// A 404 or 405 for a path or method the document lacks is fine. Requests
// for which pass returns true (streams, the document itself) go through
// unchecked. Mismatches fail t with the operation and the body.
func Conformant(t testing.TB, spec []byte, next http.Handler, pass func(*http.Request) bool) http.Handler {
	router := Router(t, spec)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pass != nil && pass(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())

		check := r.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := router.FindRoute(check)
		if err != nil {
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", r.Method, r.URL.Path, rec.Code, err)
			}
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if rec.Code/100 == 2 {
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s %s (accepted) does not match the OpenAPI document: %v", r.Method, r.URL.Path, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code,
			Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s %s answered %d, which the OpenAPI document does not describe: %v\n%.2000s", r.Method, r.URL.Path, rec.Code, err, rec.Body.String())
		}
	})
}
