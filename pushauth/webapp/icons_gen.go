//go:build ignore

// icons_gen draws the app's icons into assets/icons: a white check mark in
// a ring on the theme colour. "any" icons are rounded squares; the
// maskable one and the Apple touch icon fill the square (the launcher or
// iOS cuts the shape), with the mark inside the maskable safe zone (the
// centre circle of 80% diameter). Run with `go generate`.
package main

import (
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
)

// theme is the app's theme colour (#1d4ed8); white on it has a contrast
// ratio of 6.7:1.
var theme = color.NRGBA{0x1d, 0x4e, 0xd8, 0xff}

func main() {
	for _, ic := range []struct {
		name    string
		size    int
		rounded bool
		scale   float64 // of the mark, relative to the icon
	}{
		{"icon-192.png", 192, true, 1},
		{"icon-512.png", 512, true, 1},
		{"icon-maskable-512.png", 512, false, 0.72},
		{"apple-touch-icon.png", 180, false, 0.9},
	} {
		img := draw(ic.size, ic.rounded, ic.scale)
		f, err := os.Create(filepath.Join("assets", "icons", ic.name))
		if err != nil {
			log.Fatal(err)
		}
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		if err := enc.Encode(f, img); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}

// draw renders one icon with 4×4 supersampling. Coordinates are in units
// of the icon's size: (0,0) top left, (1,1) bottom right.
func draw(size int, rounded bool, scale float64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var bg, fg float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/ss) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/ss) / float64(size)
					if !rounded || inRoundedSquare(x, y, 0.18) {
						bg++
						// The mark, scaled about the centre.
						mx, my := 0.5+(x-0.5)/scale, 0.5+(y-0.5)/scale
						if inMark(mx, my) {
							fg++
						}
					}
				}
			}
			bg /= ss * ss
			fg /= ss * ss
			if bg == 0 {
				continue
			}
			// White over the theme colour, fg of the covered part.
			mix := func(c uint8) uint8 {
				v := (float64(c)*(bg-fg) + 255*fg) / bg
				return uint8(math.Round(v))
			}
			img.SetNRGBA(px, py, color.NRGBA{mix(theme.R), mix(theme.G), mix(theme.B), uint8(math.Round(255 * bg))})
		}
	}
	return img
}

// inRoundedSquare: the unit square with corners of radius r.
func inRoundedSquare(x, y, r float64) bool {
	cx := math.Max(r, math.Min(1-r, x))
	cy := math.Max(r, math.Min(1-r, y))
	return math.Hypot(x-cx, y-cy) <= r
}

// inMark: a ring and a check mark inside it.
func inMark(x, y float64) bool {
	d := math.Hypot(x-0.5, y-0.5)
	if d >= 0.30 && d <= 0.355 {
		return true
	}
	const w = 0.035 // half the stroke width
	return nearSegment(x, y, 0.37, 0.51, 0.46, 0.60, w) || nearSegment(x, y, 0.46, 0.60, 0.64, 0.41, w)
}

// nearSegment: within w of the segment (ax,ay)-(bx,by), round caps.
func nearSegment(x, y, ax, ay, bx, by, w float64) bool {
	dx, dy := bx-ax, by-ay
	t := ((x-ax)*dx + (y-ay)*dy) / (dx*dx + dy*dy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(x-(ax+t*dx), y-(ay+t*dy)) <= w
}
