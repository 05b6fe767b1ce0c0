package chat

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDecodeGate: however many uploads of a node arrive at once, no more
// than DecodeConcurrency decode, whichever of its handlers they reach; the
// others wait, and a wait ends with its request.
func TestDecodeGate(t *testing.T) {
	const limit, uploads = 2, 8
	cfg := DefaultConfig()
	cfg.DecodeConcurrency = limit
	s := &Service{cfg: cfg, decodes: newDecodeGate(limit)}
	// Two handlers, as cstalk mounts the API on several prefixes.
	handlers := []*api{{s: s}, {s: s}}

	var inside, peak atomic.Int32
	entered, waiting, release := make(chan struct{}, uploads), make(chan struct{}, uploads), make(chan struct{})
	s.decodes.held = func() {
		n := inside.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		<-release
		inside.Add(-1)
	}
	s.decodes.waiting = func() { waiting <- struct{}{} }

	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 50, 50)))
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			if _, err := handlers[i%2].processImage(context.Background(), buf.Bytes()); err != nil {
				t.Error(err)
			}
		})
	}
	// Every upload accounted for: limit decoding, the rest waiting.
	timeout := time.After(time.Minute)
	for range limit {
		select {
		case <-entered:
		case <-timeout:
			t.Fatal("no decode began")
		}
	}
	for range uploads - limit {
		select {
		case <-waiting:
		case <-timeout:
			t.Fatalf("%d decoding at once, want %d and the others waiting", peak.Load(), limit)
		}
	}
	// A request that ends while it waits gives up its turn.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := handlers[0].processImage(ctx, buf.Bytes()); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != limit {
		t.Fatalf("%d uploads decoded at once, want %d", p, limit)
	}
}

// TestDecodeBytes: the estimate follows what each decoder allocates.
func TestDecodeBytes(t *testing.T) {
	encodePNG := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var baseline bytes.Buffer
	// image/jpeg writes 4:2:0.
	if err := jpeg.Encode(&baseline, image.NewRGBA(image.Rect(0, 0, 100, 100)), nil); err != nil {
		t.Fatal(err)
	}
	// The same frame header marked progressive (SOF2).
	progressive := bytes.Replace(baseline.Bytes(), []byte{0xFF, 0xC0}, []byte{0xFF, 0xC2}, 1)
	gray := image.NewGray(image.Rect(0, 0, 100, 100))
	rgba := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	rgba.Set(0, 0, color.NRGBA{1, 2, 3, 4}) // not opaque: stays NRGBA
	deep := image.NewNRGBA64(image.Rect(0, 0, 100, 100))
	deep.Set(0, 0, color.NRGBA64{1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		data []byte
		bpp  float64
	}{
		{"8-bit gray PNG", encodePNG(gray), 1},
		{"8-bit RGBA PNG", encodePNG(rgba), 4},
		{"16-bit RGBA PNG", encodePNG(deep), 8},
		{"baseline 4:2:0 JPEG", baseline.Bytes(), 1.5},
		{"progressive 4:2:0 JPEG", progressive, 1.5 + 4*1.5},
	} {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// 100 x 100 is thumbnailed at its size: the scaler keeps 100 x 100 samples.
		want := int64(tc.bpp*100*100) + scalerBytesPerSample*100*100
		if got := decodeBytes(cfg, format, tc.data); got != want {
			t.Errorf("%s: %d bytes, want %d (%v a pixel)", tc.name, got, want, tc.bpp)
		}
	}
	// A sliver: its thumbnail is one pixel wide, but the scaler keeps a
	// sample for every source row.
	sliver := image.Config{ColorModel: color.GrayModel, Width: 1, Height: 25_000_000}
	if got, want := decodeBytes(sliver, "png", nil), int64(25_000_000+scalerBytesPerSample*25_000_000); got != want {
		t.Errorf("1 x 25,000,000 gray: %d bytes, want %d", got, want)
	}
}
