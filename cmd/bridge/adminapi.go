package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/config"
	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/internal/qrcode"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/web/account"
)

// adminAPI is the HTTP admin API on the admin listener, for operators'
// tools: device activations as JSON, PNG or SVG (`bridge devices enroll`
// over HTTP). Every call needs `Authorization: Bearer <http.admin_api.token>`.
type adminAPI struct {
	tokenHash [sha256.Size]byte
	st        store.Store
	activator pushauth.Activator
	dirs      *directory.Set
	ldapDirs  []string // names of the LDAP directories, for users without a local record
	// appLinks adds the web app's activation link (app_url): the web
	// authenticator is on.
	appLinks bool
	logger   *slog.Logger
}

func newAdminAPI(cfg *config.Config, st store.Store, act pushauth.Activator, dirs *directory.Set, logger *slog.Logger) *adminAPI {
	a := &adminAPI{tokenHash: sha256.Sum256([]byte(cfg.HTTP.AdminAPI.Token)), st: st, activator: act, dirs: dirs, logger: logger, appLinks: cfg.App.Enabled}
	for _, d := range cfg.Directory {
		if d.Type == "ldap" {
			a.ldapDirs = append(a.ldapDirs, d.Name)
		}
	}
	return a
}

func (a *adminAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/v1/users/{user}/activations", a.auth(a.createActivation))
}

// auth checks the bearer token in constant time (comparing hashes, so not
// even the token's length shows).
func (a *adminAPI) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
			a.logger.Warn("admin API call refused: missing or wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="bridge-admin"`)
			apiError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		next(w, r)
	}
}

// createActivation makes a one-time enrollment activation for a user and
// returns it as JSON (default; with the web app's link as app_url when the
// web authenticator is on), or as the QR code image (of the bridge:// link)
// with ?format=png or ?format=svg. Optional ?ttl=10m.
func (a *adminAPI) createActivation(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, err := store.NormalizeUsername(r.PathValue("user"))
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "png" && format != "svg" {
		apiError(w, http.StatusBadRequest, "format must be json, png or svg")
		return
	}
	act := a.activator
	if s := r.URL.Query().Get("ttl"); s != "" {
		ttl, err := time.ParseDuration(s)
		if err != nil || ttl < time.Minute || ttl > 7*24*time.Hour {
			apiError(w, http.StatusBadRequest, "ttl must be a duration between 1m and 168h")
			return
		}
		act.TTL = ttl
	}
	if err := a.userExists(ctx, name); err != nil {
		apiError(w, http.StatusNotFound, err.Error())
		return
	}
	link, rec, err := act.Create(ctx, name, "admin-api", "")
	if err != nil {
		a.logger.Error("creating an activation failed", "user", name, "err", err)
		apiError(w, http.StatusInternalServerError, "creating the activation failed")
		return
	}
	if _, err := a.st.AppendAudit(ctx, store.AuditEvent{
		Time: time.Now(), Actor: "admin-api", Action: "device.activation", Subject: name, Channel: "admin", ClientIP: remoteIP(r),
		Result: store.ResultSuccess, Details: map[string]string{"activation": rec.ID, "expires_at": rec.ExpiresAt.Format(time.RFC3339)},
	}); err != nil {
		a.logger.Error("auditing an activation failed", "user", name, "err", err)
	}
	switch format {
	case "png", "svg":
		draw, ctype := qrcode.PNG, "image/png"
		if format == "svg" {
			draw, ctype = qrcode.SVG, "image/svg+xml"
		}
		img, err := draw(link.String())
		if err != nil {
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("X-Activation-Expires", rec.ExpiresAt.UTC().Format(time.RFC3339))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(img)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		out := map[string]any{
			"user": name, "activation": rec.ID, "url": link.String(), "push_key": link.PushKey, "expires_at": rec.ExpiresAt,
		}
		if a.appLinks {
			out["app_url"] = account.AppLink(link, name)
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

// userExists accepts a local user or one an LDAP directory knows.
func (a *adminAPI) userExists(ctx context.Context, name string) error {
	_, err := a.st.GetUser(ctx, name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, dn := range a.ldapDirs {
		dir, err := a.dirs.Get(dn)
		if err != nil {
			continue
		}
		if _, err := dir.Lookup(ctx, name); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no user %q", name)
}

func remoteIP(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return r.RemoteAddr
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
