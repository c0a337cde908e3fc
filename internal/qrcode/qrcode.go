package qrcode

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mdp/qrterminal/v3"
	"rsc.io/qr"
)

// MaxInput bounds what is encoded; enrollment URLs are far shorter.
const MaxInput = 1024

// quiet is the margin around the code, in modules (the standard asks for 4).
const quiet = 4

func encode(text string) (*qr.Code, error) {
	if len(text) > MaxInput {
		return nil, errors.New("qrcode: text too long for a QR code")
	}
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return nil, fmt.Errorf("qrcode: %w", err)
	}
	return c, nil
}

// Terminal writes text to w as a QR code drawn with Unicode half blocks.
func Terminal(text string, w io.Writer) error {
	// qrterminal drops the encoder's error and then fails on the nil code;
	// encode once here so a failure is an error, not a panic.
	if _, err := encode(text); err != nil {
		return err
	}
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level:          qr.M,
		Writer:         w,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      qrterminal.QUIET_ZONE,
	})
	return nil
}

// PNG returns text as a PNG image, 8 pixels per module.
func PNG(text string) ([]byte, error) {
	c, err := encode(text)
	if err != nil {
		return nil, err
	}
	c.Scale = 8
	return c.PNG(), nil
}

// SVG returns text as an SVG image (one path, black on white), scalable.
func SVG(text string) ([]byte, error) {
	c, err := encode(text)
	if err != nil {
		return nil, err
	}
	n := c.Size + 2*quiet
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := range c.Size {
		for x := range c.Size {
			if c.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes(), nil
}
