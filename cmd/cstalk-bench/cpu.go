package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is the CPU time used so far by the server under test and by
// this generator, so a report shows which side was the bottleneck.
type cpuSample struct {
	at        time.Time
	server    time.Duration // -1 when unknown
	generator time.Duration
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on Linux.
const clockTicks = 100

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now(), server: -1}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.generator = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if serverPID > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(serverPID) + "/stat"); err == nil {
			// Fields after the parenthesised command name; utime and stime
			// are fields 14 and 15 of the whole line.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 {
				f := strings.Fields(string(b[i+1:]))
				if len(f) > 13 {
					ut, _ := strconv.ParseInt(f[11], 10, 64)
					st, _ := strconv.ParseInt(f[12], 10, 64)
					s.server = time.Duration(ut+st) * time.Second / clockTicks
				}
			}
		}
	}
	return s
}

// since returns the server's and the generator's CPU use between from and
// s, in percent of one core.
func (s cpuSample) since(from cpuSample) (server, generator float64) {
	wall := s.at.Sub(from.at).Seconds()
	if wall <= 0 {
		return 0, 0
	}
	if s.server >= 0 && from.server >= 0 {
		server = (s.server - from.server).Seconds() / wall * 100
	}
	generator = (s.generator - from.generator).Seconds() / wall * 100
	return server, generator
}
