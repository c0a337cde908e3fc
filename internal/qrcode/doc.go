// Package qrcode draws QR codes for enrollment: in a terminal (the CLI), as
// PNG and as SVG (for web pages). What it encodes is usually a secret
// (a TOTP key, a device activation code): write it to the person enrolling,
// never to a log.
package qrcode
