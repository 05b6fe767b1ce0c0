package chat

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"math"
)

// decodeGate bounds how many uploads of a node hold decoded pixels at once:
// a semaphore whose waits end with their request.
type decodeGate struct {
	slots chan struct{}
	// Tests only: waiting runs when a decode has to wait for a slot, held
	// with a slot held, before the decode.
	waiting, held func()
}

func newDecodeGate(n int) *decodeGate {
	return &decodeGate{slots: make(chan struct{}, max(1, n))}
}

// acquire waits for a slot until ctx ends.
func (g *decodeGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting != nil {
			g.waiting()
		}
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("wait to decode: %w", ctx.Err())
		}
	}
	if g.held != nil {
		g.held()
	}
	return nil
}

func (g *decodeGate) release() { <-g.slots }

// scalerBytesPerSample is what x/image/draw's kernel scalers keep per
// sample of their intermediate image (four float64s): the thumbnail's width
// times the source's height of them.
const scalerBytesPerSample = 32

// decodeBytes estimates the memory decoding an image with header cfg and
// making its thumbnail takes: its pixels at the bytes per pixel its decoder
// really allocates (the colour model and bit depth, for JPEG its sampling
// and progressive coefficients, for interlaced PNG the passes), plus the
// thumbnail scaler's intermediate image. An attacker chooses the header, so
// whatever is not known is taken at its worst.
func decodeBytes(cfg image.Config, format string, data []byte) int64 {
	pixels := float64(cfg.Width) * float64(cfg.Height)
	tw, _ := thumbnailSize(cfg.Width, cfg.Height)
	scaler := scalerBytesPerSample * float64(tw) * float64(cfg.Height)
	return int64(math.Ceil(pixels*bytesPerPixel(cfg.ColorModel, format, data) + scaler))
}

// bytesPerPixel is what the decoders of the standard library and
// x/image allocate per pixel for an image of model in format.
func bytesPerPixel(model color.Model, format string, data []byte) float64 {
	switch format {
	case "jpeg":
		return jpegBytesPerPixel(data)
	case "gif":
		// The first frame, paletted, never larger than the screen.
		return 1
	}
	var bpp float64
	switch model.(type) {
	case color.Palette:
		bpp = 1
	default:
		switch model {
		case color.GrayModel, color.AlphaModel:
			bpp = 1
		case color.Gray16Model, color.Alpha16Model:
			bpp = 2
		case color.YCbCrModel:
			// WebP's VP8 is 4:2:0 only.
			bpp = 1.5
		case color.NYCbCrAModel:
			// Plus the alpha plane, decoded at 4 bytes a pixel first
			// when it is compressed losslessly.
			bpp = 2.5 + 4
		case color.RGBAModel, color.NRGBAModel:
			bpp = 4
			if format == "webp" {
				// A lossless WebP's transforms may need a second copy.
				bpp = 8
			}
		default:
			// RGBA64, NRGBA64 (16-bit PNG) and anything unforeseen.
			bpp = 8
		}
	}
	if format == "png" && len(data) > 28 && data[28] == 1 {
		// Adam7: every pass is decoded into an image of its own before
		// the passes are merged into the whole.
		bpp *= 2
	}
	return bpp
}

// jpegBytesPerPixel reads a JPEG's frame header: image/jpeg keeps a plane
// per component at its sampling (a byte a sample), converts CMYK and
// unusual samplings into a 4-byte image beside them, and keeps every
// coefficient of a progressive image (4 bytes a sample) until the end.
func jpegBytesPerPixel(data []byte) float64 {
	const unknown = 3 + 4 + 4*3 // 4:4:4, converted, progressive
	var sof []byte
	var progressive bool
	jpegSegments(data, func(marker byte, segment []byte) bool {
		switch marker {
		case 0xC0, 0xC1, 0xC2:
			sof, progressive = segment, marker == 0xC2
			return false
		}
		return true
	})
	if len(sof) < 6 {
		return unknown
	}
	n := int(sof[5])
	if n != 1 && n != 3 && n != 4 || len(sof) < 6+3*n {
		return unknown
	}
	hmax, vmax := 1, 1
	for i := range n {
		hv := sof[6+3*i+1]
		hmax, vmax = max(hmax, int(hv>>4)), max(vmax, int(hv&15))
	}
	var samples float64
	standard := true
	for i := range n {
		hv := sof[6+3*i+1]
		h, v := int(hv>>4), int(hv&15)
		if h == 0 || v == 0 {
			return unknown
		}
		samples += float64(h*v) / float64(hmax*vmax)
		// image/jpeg's own layouts: the luma at the full rate, the
		// chroma at one sample per MCU.
		if (i == 0 && (h != hmax || v != vmax)) || (i > 0 && n == 3 && (h != 1 || v != 1)) {
			standard = false
		}
	}
	bpp := samples
	switch {
	case n == 1:
		bpp = 1
	case n == 4:
		bpp = 4 + 4
	case !standard:
		bpp = 3 + 4
	}
	if progressive {
		bpp += 4 * samples
	}
	return bpp
}

// jpegSegments calls visit with the marker and payload of each segment
// before the image data, until visit answers false or the data is
// malformed.
func jpegSegments(data []byte, visit func(marker byte, segment []byte) bool) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			return
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0xDA || marker == 0xD9: // image data or end
			return
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7): // no length
			i += 2
			continue
		}
		size := int(binary.BigEndian.Uint16(data[i+2:]))
		if size < 2 || i+2+size > len(data) {
			return
		}
		if !visit(marker, data[i+4:i+2+size]) {
			return
		}
		i += 2 + size
	}
}
