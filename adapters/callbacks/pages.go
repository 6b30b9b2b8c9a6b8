package callbacks

import (
	"html/template"
	"net/http"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/provider"
)

// page is a payer-facing message page with an optional POST button (retry
// starts a provider payment, so it is never a plain link a browser might
// prefetch) and an optional link back to the merchant.
type page struct {
	Title    string
	Message  string
	Detail   string
	Tone     string // "ok", "error" or empty
	Button   string // label; posts to Action
	Action   string
	LinkURL  string
	LinkText string
	// Refresh reloads the page after this many seconds (0: never), while
	// a payment is being confirmed.
	Refresh int
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
{{if .P.Refresh}}<meta http-equiv="refresh" content="{{.P.Refresh}}">{{end}}
<title>{{.P.Title}}</title><style>{{.Style}}</style></head>
<body><main><div class="card">
<h1>{{.P.Title}}</h1>
{{if .P.Tone}}<div class="{{.P.Tone}}">{{.P.Message}}</div>{{else}}<p>{{.P.Message}}</p>{{end}}
{{if .P.Detail}}<p>{{.P.Detail}}</p>{{end}}
{{if .P.Button}}<form method="post" action="{{.P.Action}}"><button type="submit">{{.P.Button}}</button></form>{{end}}
{{if .P.LinkURL}}<a class="button" href="{{.P.LinkURL}}">{{.P.LinkText}}</a>{{end}}
</div><p class="foot">Secure payment page</p></main></body></html>
`))

func writePage(w http.ResponseWriter, status int, p page) {
	pay.NoStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		P     page
		Style template.CSS
	}{p, pay.Style})
}

// formTmpl sends the payer's browser on with the provider's form (WZRDPAY
// flow_data): submitted by script at once, by the button without script.
var formTmpl = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>Redirecting to the payment page</title><style>{{.Style}}</style></head>
<body><main><div class="card">
<h1>Redirecting to the payment page…</h1>
<form id="provider" method="{{.F.Method}}" action="{{.F.Action}}">
{{range .F.Params}}<input type="hidden" name="{{index . 0}}" value="{{index . 1}}">
{{end}}<noscript><p>Press the button to continue to the payment page.</p></noscript>
<button type="submit">Continue to payment</button>
</form>
<script>document.getElementById("provider").submit()</script>
</div><p class="foot">Secure payment page</p></main></body></html>
`))

func writeForm(w http.ResponseWriter, f provider.Form) {
	pay.NoStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = formTmpl.Execute(w, struct {
		F     provider.Form
		Style template.CSS
	}{f, pay.Style})
}
