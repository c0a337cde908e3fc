package web

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Strings returns the strings of locales/*.json whose keys start with
// prefix, per language (the file's name: "en"), for a part of the bridge
// that shows them outside these pages (the web app's "app." strings).
func Strings(prefix string) (map[string]map[string]string, error) {
	files, err := fs.Glob(localeFS, "locales/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		data, err := localeFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("web: %s: %w", f, err)
		}
		sel := map[string]string{}
		for k, v := range m {
			if strings.HasPrefix(k, prefix) {
				sel[k] = v
			}
		}
		out[strings.TrimSuffix(path.Base(f), ".json")] = sel
	}
	return out, nil
}
