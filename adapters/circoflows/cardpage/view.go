package cardpage

import (
	"html/template"
	"net/http"

	"github.com/payledger/payledger/adapters/pay"
	"github.com/payledger/payledger/adapters/sandbox"
	"github.com/payledger/payledger/domain/invoice"
)

// view is what every page shows about the invoice.
type view struct {
	Style       template.CSS
	Title       string
	Merchant    string
	Amount      string
	Currency    string
	Description string
	Number      int64
	Action      string
	// form
	Error      string
	Notice     string
	Fields     sandbox.FieldErrors
	Expiry     string
	Cardholder string
	FailURL    string
	// result
	SuccessURL string
	CardBrand  string
	CardLast4  string
	// message page
	Message  string
	LinkURL  string
	LinkText string
}

// formView is what a re-rendered form keeps: never the card number or
// the CVC.
type formView struct {
	Error      string
	Notice     string
	Fields     sandbox.FieldErrors
	Expiry     string
	Cardholder string
}

func (p *Page) baseView(st invoice.State, title string) view {
	return view{
		Style: pay.Style, Title: title, Merchant: p.opt.MerchantName,
		Amount: st.Amount.String(), Currency: st.Amount.Currency().Code, Description: st.Description, Number: st.Number,
		FailURL: st.ReturnURLs.Fail, SuccessURL: st.ReturnURLs.Success,
	}
}

func (p *Page) renderForm(w http.ResponseWriter, status int, st invoice.State, linkID string, f formView) {
	v := p.baseView(st, "Pay "+p.opt.MerchantName)
	v.Action = p.SessionURL(st.ID, linkID)
	v.Error, v.Notice, v.Fields, v.Expiry, v.Cardholder = f.Error, f.Notice, f.Fields, f.Expiry, f.Cardholder
	p.render(w, status, formTmpl, v)
}

func (p *Page) renderResult(w http.ResponseWriter, st invoice.State) {
	v := p.baseView(st, "Payment successful")
	for _, pm := range st.Payments {
		if pm.Status == invoice.PaymentStatusProcessed {
			v.CardBrand, v.CardLast4 = pm.CardBrand, pm.CardLast4
		}
	}
	p.render(w, http.StatusOK, resultTmpl, v)
}

// page is a message about the invoice with an optional link onward.
func (p *Page) page(w http.ResponseWriter, status int, st invoice.State, title, msg, linkURL, linkText string) {
	v := p.baseView(st, title)
	v.Message = msg
	if linkURL != "" {
		v.LinkURL, v.LinkText = linkURL, linkText
	}
	p.render(w, status, messageTmpl, v)
}

func (p *Page) render(w http.ResponseWriter, status int, t *template.Template, v view) {
	pay.NoStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, v); err != nil {
		p.opt.Logger.Error("cardpage: render", "err", err)
	}
}

const head = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
{{block "refresh" .}}{{end}}
<title>{{.Title}}</title><style>{{.Style}}</style></head>
<body><main><div class="card">
<div class="merchant"><span>{{.Merchant}}</span></div>
<div class="amount" data-testid="amount">{{.Amount}} <small style="font-size:1rem;color:#57606a">{{.Currency}}</small></div>
<p class="desc">{{.Description}}{{if .Number}} · Invoice #{{.Number}}{{end}}</p>
`

const foot = `</div><p class="foot">Secure card payment · processed by CircoFlows</p></main></body></html>`

var formTmpl = template.Must(template.New("form").Parse(head + `
{{if .Notice}}<p role="status" id="notice">{{.Notice}}</p>{{end}}
{{if .Error}}<div class="error" role="alert" id="error">{{.Error}}</div>{{end}}
<form method="post" action="{{.Action}}" autocomplete="off" novalidate>
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" maxlength="23" required>
{{with index .Fields "card_number"}}<div class="field-error">{{.}}</div>{{end}}
<div class="row">
<div><label for="expiry">Expiry (MM/YY)</label>
<input id="expiry" name="expiry" inputmode="numeric" autocomplete="cc-exp" placeholder="MM/YY" maxlength="7" value="{{.Expiry}}" required>
{{with index .Fields "expiry"}}<div class="field-error">{{.}}</div>{{end}}</div>
<div><label for="cvc">CVC</label>
<input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="123" maxlength="4" required>
{{with index .Fields "cvc"}}<div class="field-error">{{.}}</div>{{end}}</div>
</div>
<label for="cardholder">Name on card</label>
<input id="cardholder" name="cardholder" autocomplete="cc-name" placeholder="Jane Smith" maxlength="100" value="{{.Cardholder}}" required>
{{with index .Fields "cardholder"}}<div class="field-error">{{.}}</div>{{end}}
<button type="submit" id="pay">Pay {{.Amount}} {{.Currency}}</button>
</form>
{{if .FailURL}}<p class="foot"><a href="{{.FailURL}}" rel="noreferrer">Cancel and return to {{.Merchant}}</a></p>{{end}}
` + foot))

var resultTmpl = template.Must(template.New("result").Parse(`{{define "refresh"}}{{if .SuccessURL}}<meta http-equiv="refresh" content="5;url={{.SuccessURL}}">{{end}}{{end}}` + head + `
<div class="ok" role="status" id="result"><strong>Payment successful.</strong> Thank you!</div>
<p>{{if .CardLast4}}Paid with {{.CardBrand}} •••• {{.CardLast4}}. {{end}}A receipt is on its way from the merchant.</p>
{{if .SuccessURL}}<a class="button" id="continue" href="{{.SuccessURL}}" rel="noreferrer">Return to {{.Merchant}}</a>
<p class="foot">You will be redirected automatically in a few seconds.</p>{{end}}
` + foot))

var messageTmpl = template.Must(template.New("message").Parse(head + `
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .LinkURL}}<a class="button" href="{{.LinkURL}}" rel="noreferrer">{{.LinkText}}</a>{{end}}
` + foot))
