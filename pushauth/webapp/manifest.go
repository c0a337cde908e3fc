package webapp

import (
	"encoding/json"
	"fmt"
)

// manifest is the web app manifest (W3C Web Application Manifest).
type manifest struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	ShortName       string         `json:"short_name"`
	Description     string         `json:"description,omitempty"`
	Lang            string         `json:"lang"`
	StartURL        string         `json:"start_url"`
	Scope           string         `json:"scope"`
	Display         string         `json:"display"`
	Orientation     string         `json:"orientation,omitempty"`
	ThemeColor      string         `json:"theme_color"`
	BackgroundColor string         `json:"background_color"`
	Icons           []manifestIcon `json:"icons"`
}

type manifestIcon struct {
	Src     string `json:"src"`
	Sizes   string `json:"sizes"`
	Type    string `json:"type"`
	Purpose string `json:"purpose"`
}

// shortNameMax is about what a home screen shows under an icon.
const shortNameMax = 12

func (h *Handler) makeManifest() (asset, error) {
	strs := h.merged("en")
	short := []rune(h.cfg.Name)
	if len(short) > shortNameMax {
		short = []rune(format(strs, "app.short_name"))
	}
	m := manifest{
		ID: Prefix, Name: h.cfg.Name, ShortName: string(short), Description: format(strs, "app.description"),
		Lang: "en", StartURL: Prefix, Scope: Prefix, Display: "standalone", Orientation: "portrait",
		ThemeColor: ThemeColor, BackgroundColor: BackgroundColor,
		Icons: []manifestIcon{
			{Src: Prefix + "icons/icon-192.png", Sizes: "192x192", Type: "image/png", Purpose: "any"},
			{Src: Prefix + "icons/icon-512.png", Sizes: "512x512", Type: "image/png", Purpose: "any"},
			{Src: Prefix + "icons/icon-maskable-512.png", Sizes: "512x512", Type: "image/png", Purpose: "maskable"},
		},
	}
	for _, ic := range m.Icons {
		if _, ok := h.assets[ic.Src[len(Prefix):]]; !ok {
			return asset{}, fmt.Errorf("webapp: the manifest's icon %s is not embedded", ic.Src)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return asset{}, err
	}
	return newAsset(b, "application/manifest+json"), nil
}
