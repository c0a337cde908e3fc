package web

import (
	"bytes"
	"html/template"
	"net/http"
)

// SimpleForm is the one form a simple page may carry: a button that posts
// its hidden fields to Action.
type SimpleForm struct {
	Action string
	Button string
	Hidden map[string]string
}

var simplePage = template.Must(template.New("simple").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/style.css"></head>
<body><main><h1>{{.Title}}</h1><p role="alert">{{.Msg}}</p>
{{with .Form}}<form method="post" action="{{.Action}}">{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}<button type="submit" autofocus>{{.Button}}</button></form>{{end}}
</main></body></html>
`))

// SimplePage answers with a page of a title, a message and optionally one
// form: the front ends' error pages (an answer that must not go to the
// application) and confirmations. Nothing on it comes from elsewhere.
func SimplePage(w http.ResponseWriter, status int, title, msg string, form *SimpleForm) {
	var buf bytes.Buffer
	_ = simplePage.Execute(&buf, struct {
		Title, Msg string
		Form       *SimpleForm
	}{title, msg, form})
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
