package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// node is one server the bench signals to: its base URL and the process
// whose CPU time is counted.
type node struct {
	base string // http://host:port
	pid  int
}

func (n node) signalURL() string { return "ws" + strings.TrimPrefix(n.base, "http") + "/signal" }

// participant is who a client joins as.
type participant struct{ token, userID string }

// cluster is what the bench runs against: the nodes (the first hosts the
// rooms, having their first joins), how a participant is admitted and how
// recording is switched.
type cluster struct {
	nodes   []node
	company string
	// admit returns the token and user id of the participant called name.
	admit func(ctx context.Context, name string) (participant, error)
	// setRecording decides whether rooms opened from now on are recorded.
	setRecording func(ctx context.Context, on bool) error
}

var httpClient = &http.Client{Timeout: signalWait}

// sample is the cluster's counters at one moment.
type sample struct {
	at        time.Time
	forwarded float64 // packets, all nodes
	fwdBytes  float64
	cpu       float64 // seconds, all nodes' processes
	received  int64   // by the bench's subscribers
}

func (cl *cluster) sample(ctx context.Context, received int64) (sample, error) {
	s := sample{at: time.Now(), received: received}
	for _, n := range cl.nodes {
		cpu, err := processCPU(n.pid)
		if err != nil {
			return s, err
		}
		s.cpu += cpu
		fwd, bytes, err := forwardedCounters(ctx, n.base)
		if err != nil {
			return s, err
		}
		s.forwarded += fwd
		s.fwdBytes += bytes
	}
	return s, nil
}

// forwardedCounters sums the SFU's forwarded packets and bytes on base's
// /metrics.
func forwardedCounters(ctx context.Context, base string) (packets, bytes float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics of %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("metrics of %s: %s", base, resp.Status)
	}
	return parseForwarded(resp.Body)
}

// parseForwarded sums cstalk_video_forwarded_packets_total and
// cstalk_video_forwarded_bytes_total over their labels in the Prometheus
// text format.
func parseForwarded(r io.Reader) (packets, bytes float64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch name {
		case "cstalk_video_forwarded_packets_total":
			packets += v
		case "cstalk_video_forwarded_bytes_total":
			bytes += v
		}
	}
	return packets, bytes, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on Linux.
const clockTicks = 100

// processCPU is the user and system CPU seconds process pid has used.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime, fields 14 and 15 of a /proc/PID/stat
// line, counted after the parenthesised command name (which may hold
// spaces).
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// cstalkCluster runs against `cstalk serve` nodes: an administrator of
// company 1 adds a member for every bench participant (kept for later
// runs on the same database), each logs in, and joins as its speaker id.
func cstalkCluster(ctx context.Context, nodes []node, admin, password string) (*cluster, error) {
	base := nodes[0].base
	adminToken, _, err := cstalkLogin(ctx, base, admin, password)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	admitted := map[string]participant{}
	admit := func(ctx context.Context, name string) (participant, error) {
		mu.Lock()
		p, ok := admitted[name]
		mu.Unlock()
		if ok {
			return p, nil
		}
		login := "vbench-" + name
		status, err := cstalkCall(ctx, http.MethodPost, base+"/api/admin/members", adminToken,
			map[string]any{"loginName": login, "password": password, "name": login, "isAdmin": 0}, nil)
		if err != nil {
			return p, err
		}
		if status != http.StatusCreated && status != http.StatusConflict {
			return p, fmt.Errorf("add member %s: status %d", login, status)
		}
		if p.token, p.userID, err = cstalkLogin(ctx, base, login, password); err != nil {
			return p, err
		}
		mu.Lock()
		admitted[name] = p
		mu.Unlock()
		return p, nil
	}
	setRecording := func(ctx context.Context, on bool) error {
		status, err := cstalkCall(ctx, http.MethodPut, base+"/api/admin/settings", adminToken, map[string]any{"recordCalls": on}, nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d", status)
		}
		if err != nil {
			return fmt.Errorf("set recordCalls %v: %w", on, err)
		}
		return nil
	}
	return &cluster{nodes: nodes, company: "1", admit: admit, setRecording: setRecording}, nil
}

// cstalkLogin logs a member in and returns its token and speaker id.
func cstalkLogin(ctx context.Context, base, login, password string) (token, speaker string, err error) {
	var out struct {
		Token  string `json:"token"`
		Member struct {
			SpeakerID int64 `json:"speakerId"`
		} `json:"member"`
	}
	status, err := cstalkCall(ctx, http.MethodPost, base+"/api/auth/login", "", map[string]any{"loginName": login, "password": password}, &out)
	if err == nil && (status != http.StatusOK || out.Token == "" || out.Member.SpeakerID == 0) {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		return "", "", fmt.Errorf("log %s in: %w", login, err)
	}
	return out.Token, strconv.FormatInt(out.Member.SpeakerID, 10), nil
}

// cstalkCall sends body as JSON and decodes a 2xx answer into out.
func cstalkCall(ctx context.Context, method, url, token string, body, out any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return resp.StatusCode, nil
}
