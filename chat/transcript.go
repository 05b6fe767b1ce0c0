package chat

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

// Transcripts: a room's conversation as a plain text or an HTML document,
// with names and times in the configured zone. Internal notes only when
// asked for. HTML is written by html/template, so whatever anyone typed is
// escaped; its only style is a fixed sheet whose hash the answer's
// Content-Security-Policy names (TranscriptCSP), nothing else may run.

const (
	// transcriptPage is how many messages one read takes.
	transcriptPage = 500
	// TranscriptMaxMessages bounds one transcript; a longer room ends
	// with a line saying so.
	TranscriptMaxMessages = 20000
)

// Transcript formats.
const (
	TranscriptText = "text"
	TranscriptHTML = "html"
)

const transcriptStyle = `body{font:14px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1f2933}` +
	`dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#616e7c}dd{margin:0}` +
	`ol{list-style:none;padding:0}li{padding:.35rem 0;border-bottom:1px solid #e4e7eb;white-space:pre-wrap}` +
	`time{color:#7b8794;font-size:.85em;margin-right:.5rem}.system{color:#616e7c;font-style:italic}` +
	`.note{background:#fff8e1}.deleted{color:#9aa5b1}.tag{font-size:.8em;color:#b44d12;margin-right:.3rem}`

// TranscriptCSP is the Content-Security-Policy of an HTML transcript: its
// own style sheet and nothing else.
var TranscriptCSP = func() string {
	sum := sha256.Sum256([]byte(transcriptStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

var transcriptTemplates = template.Must(template.New("transcript").Parse(`
{{- define "head"}}<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Title}} #{{.RoomID}}</title><style>` + transcriptStyle + `</style></head>
<body><h1>{{.Title}} #{{.RoomID}}</h1>
<dl>{{range .Fields}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
<ol>
{{end}}
{{- define "line"}}<li class="{{.Class}}"><time>{{.Date}}</time>{{if .Tag}}<span class="tag">{{.Tag}}</span>{{end}}{{if .Name}}<b>{{.Name}}</b>: {{end}}{{if .Link}}<a href="{{.Link}}">{{.Text}}</a>{{else}}{{.Text}}{{end}}</li>
{{end}}
{{- define "end"}}{{if .}}<li class="system">{{.}}</li>
{{end}}</ol>
</body></html>
{{end}}`))

type transcriptField struct{ Label, Value string }

type transcriptHead struct {
	Lang, Title string
	RoomID      int64
	Fields      []transcriptField
}

// transcriptLine is one message as both formats show it.
type transcriptLine struct {
	Class, Date, Tag, Name, Text, Link string
}

// WriteTranscript writes room's conversation to w in format (text or
// html), labels in language l, internal notes only with notes. The first
// page is read before anything is written, so a failing store is an error
// with nothing written; a failure later cuts the document short and is
// returned.
func (s *Service) WriteTranscript(ctx context.Context, w io.Writer, room *Room, format string, notes bool, l Lang) error {
	head, err := s.transcriptHead(ctx, room, notes, l)
	if err != nil {
		return fmt.Errorf("chat: transcript of room %d: %w", room.ID, err)
	}
	page, err := s.store.MessagesAfter(ctx, room.ID, 0, transcriptPage, notes)
	if err != nil {
		return fmt.Errorf("chat: transcript of room %d: %w", room.ID, err)
	}
	bw := bufio.NewWriter(w)
	out := &transcriptWriter{w: bw, html: format == TranscriptHTML}
	out.head(head)
	written := 0
	for len(page) > 0 && written < TranscriptMaxMessages {
		for i := range page {
			if written == TranscriptMaxMessages {
				break
			}
			out.line(s.transcriptLine(&page[i], l))
			written++
		}
		if len(page) < transcriptPage {
			break
		}
		if page, err = s.store.MessagesAfter(ctx, room.ID, page[len(page)-1].ID, transcriptPage, notes); err != nil {
			return fmt.Errorf("chat: transcript of room %d: %w", room.ID, err)
		}
	}
	closing := ""
	switch {
	case written == 0:
		closing = l.T("transcript_empty")
	case written == TranscriptMaxMessages && len(page) > 0:
		closing = fmt.Sprintf(l.T("transcript_truncated"), TranscriptMaxMessages)
	}
	out.end(closing)
	if out.err != nil {
		return fmt.Errorf("chat: transcript of room %d: %w", room.ID, out.err)
	}
	return bw.Flush()
}

func (s *Service) transcriptHead(ctx context.Context, room *Room, notes bool, l Lang) (*transcriptHead, error) {
	company, err := s.store.Company(ctx, room.CompanyID)
	if err != nil {
		return nil, err
	}
	rp, err := s.loadRoomPeople(ctx, room, nil)
	if err != nil {
		return nil, err
	}
	none := l.T("transcript_none")
	customer := rp.customer.Name
	if customer == "" {
		customer = rp.customer.GasappMemberNumber
	}
	assignee := none
	if rp.member != nil {
		assignee = rp.member.Name + " (" + rp.member.LoginName + ")"
	}
	ended, review := none, none
	if room.EndDate != nil {
		ended = FormatDate(*room.EndDate, s.cfg.Zone)
	}
	if room.ReviewScore != nil {
		review = strconv.Itoa(*room.ReviewScore) + "/5"
	}
	h := &transcriptHead{Lang: "ko", Title: l.T("transcript_title"), RoomID: room.ID, Fields: []transcriptField{
		{l.T("transcript_company"), company.Name},
		{l.T("transcript_room"), strconv.FormatInt(room.ID, 10)},
		{l.T("transcript_customer"), customer + " (" + rp.customer.GasappMemberNumber + ")"},
		{l.T("transcript_assignee"), assignee},
		{l.T("transcript_status"), statusLabel(room.Status, l)},
		{l.T("transcript_created"), FormatDate(room.CreateDate, s.cfg.Zone)},
		{l.T("transcript_ended"), ended},
		{l.T("transcript_review"), review},
		{l.T("transcript_zone"), s.cfg.Zone.String()},
	}}
	if l == English {
		h.Lang = "en"
	}
	if notes {
		h.Fields = append(h.Fields, transcriptField{l.T("transcript_note"), l.T("transcript_notes_kept")})
	}
	return h, nil
}

func statusLabel(st RoomStatus, l Lang) string {
	switch st {
	case StatusWaiting:
		return l.T("transcript_waiting")
	case StatusInProgress:
		return l.T("transcript_in_progress")
	default:
		return l.T("transcript_closed")
	}
}

func (s *Service) transcriptLine(m *Message, l Lang) transcriptLine {
	line := transcriptLine{Date: FormatDate(m.CreateDate, s.cfg.Zone), Name: m.SpeakerName, Text: m.Body}
	switch {
	case m.IsCustomer:
		line.Class = "customer"
	case m.IsSystem:
		line.Class, line.Tag, line.Name = "system", l.T("transcript_system"), ""
	default:
		line.Class = "member"
	}
	if m.AdminType == 1 {
		line.Class, line.Tag = "note", l.T("transcript_note")
	}
	switch {
	case m.Deleted:
		line.Class += " deleted"
		line.Text = "(" + l.T("transcript_deleted") + ")"
	case m.Type == 1:
		line.Tag = strings.TrimSpace(line.Tag + " " + l.T("transcript_image"))
		line.Text, line.Link = m.Detail, m.Detail
	}
	return line
}

// transcriptWriter writes the parts of a transcript in one format and
// keeps the first write error.
type transcriptWriter struct {
	w    *bufio.Writer
	html bool
	err  error
}

func (t *transcriptWriter) exec(name string, data any) {
	if t.err == nil {
		t.err = transcriptTemplates.ExecuteTemplate(t.w, name, data)
	}
}

func (t *transcriptWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *transcriptWriter) head(h *transcriptHead) {
	if t.html {
		t.exec("head", h)
		return
	}
	t.printf("%s #%d\n", h.Title, h.RoomID)
	for _, f := range h.Fields {
		t.printf("%s: %s\n", f.Label, f.Value)
	}
	t.printf("\n")
}

func (t *transcriptWriter) line(l transcriptLine) {
	if t.html {
		t.exec("line", l)
		return
	}
	prefix := "[" + l.Date + "] "
	if l.Tag != "" {
		prefix += "(" + l.Tag + ") "
	}
	if l.Name != "" {
		prefix += l.Name + ": "
	}
	// Continuation lines are indented, so a message can never pass for
	// another line of the transcript.
	t.printf("%s%s\n", prefix, strings.ReplaceAll(l.Text, "\n", "\n    "))
}

func (t *transcriptWriter) end(closing string) {
	if t.html {
		t.exec("end", closing)
		return
	}
	if closing != "" {
		t.printf("%s\n", closing)
	}
}
