package qrcode

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/png"
	"strings"
	"testing"

	"rsc.io/qr"
)

const uri = "bridge://enroll?v=1&url=https%3A%2F%2Fbridge.example.com&code=abc.def&pk=xyz"

func TestTerminal(t *testing.T) {
	var buf bytes.Buffer
	if err := Terminal(uri, &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "█") {
		t.Fatalf("no QR code drawn:\n%s", buf.String())
	}
	if err := Terminal(strings.Repeat("x", MaxInput+1), &buf); err == nil {
		t.Fatal("oversized input: no error")
	}
}

// TestPNGAndSVGMatchTheCode decodes both images back to modules and
// compares them with the encoder's, so a drawing bug fails the test.
func TestPNGAndSVGMatchTheCode(t *testing.T) {
	want, err := qr.Encode(uri, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PNG(uri)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(p))
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	s, err := SVG(uri)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Path struct {
			D string `xml:"d,attr"`
		} `xml:"path"`
	}
	if err := xml.Unmarshal(s, &doc); err != nil {
		t.Fatalf("SVG is not XML: %v", err)
	}
	svgBlack := map[[2]int]bool{}
	for _, cmd := range strings.Split(doc.Path.D, "z")[:strings.Count(doc.Path.D, "z")] {
		var x, y int
		if _, err := fmtSscanf(cmd, &x, &y); err != nil {
			t.Fatalf("SVG path command %q: %v", cmd, err)
		}
		svgBlack[[2]int{x - quiet, y - quiet}] = true
	}
	for y := range want.Size {
		for x := range want.Size {
			r, _, _, _ := img.At(x*8+4+quiet*8, y*8+4+quiet*8).RGBA()
			if got := r == 0; got != want.Black(x, y) {
				t.Fatalf("PNG module (%d,%d) black=%v, want %v", x, y, got, want.Black(x, y))
			}
			if svgBlack[[2]int{x, y}] != want.Black(x, y) {
				t.Fatalf("SVG module (%d,%d) black=%v, want %v", x, y, svgBlack[[2]int{x, y}], want.Black(x, y))
			}
		}
	}
	if _, err := SVG(strings.Repeat("x", MaxInput+1)); err == nil {
		t.Fatal("oversized SVG input: no error")
	}
}

func fmtSscanf(cmd string, x, y *int) (int, error) {
	return fmt.Sscanf(cmd, "M%d %dh1v1h-1", x, y)
}
