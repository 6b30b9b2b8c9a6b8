package pay

import (
	"html/template"
	"net/http"
)

// Style is the stylesheet of every payer-facing page (this package's and
// the sandbox's), inlined so that a page is one response and works with
// no other request succeeding.
const Style template.CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;background:#f4f5f7;color:#1f2328}
main{max-width:440px;margin:40px auto;padding:0 16px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:12px;padding:28px;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:1.3rem;margin:0 0 8px}
p{margin:0 0 12px;color:#57606a}
.merchant{font-weight:600;color:#1f2328;margin-bottom:16px;display:flex;align-items:center;gap:8px}
.amount{font-size:2rem;font-weight:700;margin:4px 0 2px;color:#1f2328}
.desc{margin-bottom:20px}
label{display:block;font-size:.85rem;font-weight:600;margin:14px 0 4px;color:#1f2328}
input{width:100%;padding:11px 12px;font-size:1rem;border:1px solid #d0d7de;border-radius:8px;background:#fff}
input:focus{outline:2px solid #0969da;border-color:#0969da}
.row{display:flex;gap:12px}.row>div{flex:1}
button,.button{display:block;width:100%;margin-top:22px;padding:13px;font-size:1rem;font-weight:600;color:#fff;background:#0969da;border:0;border-radius:8px;cursor:pointer;text-align:center;text-decoration:none}
button.secondary{background:#fff;color:#cf222e;border:1px solid #cf222e;margin-top:10px}
.error{background:#ffebe9;border:1px solid #ff8182;color:#82071e;border-radius:8px;padding:10px 12px;margin:12px 0}
.ok{background:#dafbe1;border:1px solid #4ac26b;color:#116329;border-radius:8px;padding:10px 12px;margin:12px 0}
.field-error{color:#cf222e;font-size:.85rem;margin-top:4px}
.foot{font-size:.8rem;color:#6e7781;text-align:center;margin-top:16px}
.badge{display:inline-block;font-size:.7rem;font-weight:700;letter-spacing:.04em;background:#fff8c5;color:#7d4e00;border:1px solid #d4a72c;border-radius:999px;padding:1px 8px}
`

// Page is a message page: a heading, a sentence, and optionally a link
// onward.
type Page struct {
	Title    string
	Message  string
	LinkURL  string
	LinkText string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.P.Title}}</title><style>{{.Style}}</style></head>
<body><main><div class="card">
<h1>{{.P.Title}}</h1>
<p>{{.P.Message}}</p>
{{if .P.LinkURL}}<a class="button" href="{{.P.LinkURL}}">{{.P.LinkText}}</a>{{end}}
</div><p class="foot">Secure payment page</p></main></body></html>
`))

// WritePage renders p with status. It sets the no-store headers itself so
// that no error path can forget them.
func WritePage(w http.ResponseWriter, status int, p Page) {
	NoStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		P     Page
		Style template.CSS
	}{p, Style})
}
