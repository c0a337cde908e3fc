package otp

import (
	"errors"
	"fmt"
	"io"

	"github.com/mdp/qrterminal/v3"
	"rsc.io/qr"
)

// maxQRInput bounds what QR encodes; an otpauth URI is far shorter.
const maxQRInput = 1024

// QR writes uri to w as a QR code drawn with Unicode half blocks, for a
// terminal (the CLI's enrolment). The URI holds the TOTP secret: write it to
// the operator's terminal only, never to a log.
func QR(uri string, w io.Writer) error {
	if len(uri) > maxQRInput {
		return errors.New("otp: text too long for a terminal QR code")
	}
	// qrterminal drops the encoder's error and then fails on the nil code;
	// encode once here so a failure is an error, not a panic.
	if _, err := qr.Encode(uri, qr.M); err != nil {
		return fmt.Errorf("otp: QR code: %w", err)
	}
	qrterminal.GenerateWithConfig(uri, qrterminal.Config{
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
