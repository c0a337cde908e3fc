package saml

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// goxmldsig before v1.6.1 lets a forged XML signature through
// (CVE-2026-33487). crewjam/saml v0.5.1 asks for an affected version; our
// go.mod raises it by MVS. This test fails if the build ever resolves an
// older one again (e.g. the requirement is dropped by a tidy).
const minGoxmldsig = "v1.6.1"

func TestGoxmldsigNotVulnerable(t *testing.T) {
	const path = "github.com/russellhaering/goxmldsig"
	version, source := goxmldsigVersion(t, path)
	c, err := compareSemver(version, minGoxmldsig)
	if err != nil {
		t.Fatalf("%s version %q (from %s): %v", path, version, source, err)
	}
	if c < 0 {
		t.Fatalf("%s resolved to %s (from %s), below %s (CVE-2026-33487, XML signature bypass); require %s or later in go.mod",
			path, version, source, minGoxmldsig, minGoxmldsig)
	}
	t.Logf("%s %s (from %s)", path, version, source)
}

// goxmldsigVersion returns the version of module path linked into this
// package. It reads the binary's build info first; test binaries carry no
// dependency list there (only the main module), so it then asks the go
// command for the modules of this package's dependencies, which is the
// resolution the test binary was built with.
func goxmldsigVersion(t *testing.T, path string) (version, source string) {
	t.Helper()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path != path {
				continue
			}
			if dep.Replace != nil {
				if dep.Replace.Version == "" {
					t.Fatalf("%s is replaced by the directory %s; cannot check its version", path, dep.Replace.Path)
				}
				return dep.Replace.Version, "build info (replacement)"
			}
			return dep.Version, "build info"
		}
	}

	goCmd, err := exec.LookPath("go")
	if err != nil {
		if goroot := os.Getenv("GOROOT"); goroot != "" {
			goCmd = filepath.Join(goroot, "bin", "go")
		} else {
			t.Fatalf("test binary has no dependency build info and the go command is not in PATH: %v", err)
		}
	}
	// The test runs in the package directory: "." is this package.
	out, err := exec.Command(goCmd, "list", "-deps",
		"-f", "{{with .Module}}{{.Path}} {{.Version}} {{with .Replace}}{{.Path}} {{.Version}}{{end}}{{end}}",
		".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Logf("go list stderr: %s", ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != path {
			continue
		}
		if len(f) >= 3 { // replaced
			if len(f) < 4 {
				t.Fatalf("%s is replaced by the directory %s; cannot check its version", path, f[2])
			}
			return f[3], "go list -deps (replacement)"
		}
		return f[1], "go list -deps"
	}
	t.Fatalf("%s is not a dependency of this package; the saml package must import it", path)
	return "", ""
}

// compareSemver compares two "vMAJOR.MINOR.PATCH[-pre][+build]" versions
// (golang.org/x/mod/semver is not a requirement of this module). A
// pre-release sorts before its release, so v1.6.1-rc.1 < v1.6.1; Go
// pseudo-versions are pre-releases and sort accordingly.
func compareSemver(a, b string) (int, error) {
	pa, prea, err := parseSemver(a)
	if err != nil {
		return 0, err
	}
	pb, preb, err := parseSemver(b)
	if err != nil {
		return 0, err
	}
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1, nil
			}
			return 1, nil
		}
	}
	switch {
	case prea == preb:
		return 0, nil
	case prea == "":
		return 1, nil
	case preb == "":
		return -1, nil
	case prea < preb: // good enough for a lower-bound check
		return -1, nil
	default:
		return 1, nil
	}
}

func parseSemver(v string) ([3]int, string, error) {
	var n [3]int
	s, ok := strings.CutPrefix(v, "v")
	if !ok {
		return n, "", strconv.ErrSyntax
	}
	s, _, _ = strings.Cut(s, "+") // build metadata (e.g. +incompatible)
	s, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return n, "", strconv.ErrSyntax
	}
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return n, "", strconv.ErrSyntax
		}
		n[i] = x
	}
	return n, pre, nil
}

func TestCompareSemver(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"v1.6.1", "v1.6.1", 0},
		{"v1.6.0", "v1.6.1", -1},
		{"v1.5.9", "v1.6.1", -1},
		{"v1.4.0", "v1.6.1", -1},
		{"v1.6.2", "v1.6.1", 1},
		{"v1.10.0", "v1.6.1", 1},
		{"v2.0.0+incompatible", "v1.6.1", 1},
		{"v1.6.1-rc.1", "v1.6.1", -1},
		{"v1.6.1-0.20260101000000-abcdefabcdef", "v1.6.1", -1},
		{"v1.6.2-0.20260101000000-abcdefabcdef", "v1.6.1", 1},
	} {
		got, err := compareSemver(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("compareSemver(%s, %s) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := compareSemver("1.6.1", "v1.6.1"); err == nil {
		t.Error("version without v accepted")
	}
}
