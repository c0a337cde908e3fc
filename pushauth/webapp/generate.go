package webapp

// The icons are drawn by a small program and committed, so the build needs
// nothing but the embedded files.
//go:generate go run icons_gen.go
