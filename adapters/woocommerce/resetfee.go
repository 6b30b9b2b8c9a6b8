package woocommerce

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/ledger"
)

// Path is where the endpoint is mounted.
const Path = "/wp-json/payledger/v1/reset-fee"

// Options configure the reset-fee endpoint. Invoices, Catalog and at least
// one secret are required.
type Options struct {
	Invoices *ledger.Invoices
	Catalog  *Catalog
	// Secrets are the accepted pre-shared keys; more than one while a key
	// is being rotated. See ParseSecrets.
	Secrets []string
	// PublicURL is the base of payment links (no trailing slash).
	PublicURL string
	// Provider of the created invoices; empty means the ledger's default.
	Provider string
	// LinkTTL of the returned link; 0 means the policy default.
	LinkTTL time.Duration
	Logger  *slog.Logger
}

// ParseSecrets splits a comma-separated secret setting, dropping blanks.
func ParseSecrets(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ResetFee is the handler.
type ResetFee struct {
	opt     Options
	digests [][sha256.Size]byte
}

// New builds the endpoint; it refuses a configuration without a catalog
// or a secret, since the endpoint would then only ever answer errors.
func New(opt Options) (*ResetFee, error) {
	if opt.Invoices == nil {
		return nil, errors.New("woocommerce: Invoices is required")
	}
	if opt.Catalog == nil || opt.Catalog.Len() == 0 {
		return nil, errors.New("woocommerce: a product catalog is required")
	}
	if len(opt.Secrets) == 0 {
		return nil, errors.New("woocommerce: at least one reset-fee secret is required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.PublicURL = strings.TrimRight(opt.PublicURL, "/")
	h := &ResetFee{opt: opt}
	for _, s := range opt.Secrets {
		h.digests = append(h.digests, sha256.Sum256([]byte(s)))
	}
	return h, nil
}

// Routes mounts POST /wp-json/payledger/v1/reset-fee.
func (h *ResetFee) Routes(mux *http.ServeMux) {
	mux.Handle("POST "+Path, h)
}

// Billing is the seed's billing_details.
type Billing struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Address1  string `json:"address_1"`
	Address2  string `json:"address_2"`
	City      string `json:"city"`
	Postcode  string `json:"postcode"`
	Country   string `json:"country"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
}

// Request is the seed's request body.
type Request struct {
	BillingDetails *Billing `json:"billing_details"`
	ProductID      *int64   `json:"product_id"`
	SecretKey      string   `json:"secret_key"`
	AccountID      string   `json:"account_id"`
}

type response struct {
	Success    bool   `json:"success"`
	OrderID    int64  `json:"order_id,omitempty"`
	PaymentURL string `json:"payment_url,omitempty"`
	Message    string `json:"message,omitempty"`
}

func reply(w http.ResponseWriter, status int, r response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	reply(w, status, response{Success: false, Message: msg})
}

const maxBody = 64 << 10

// checkSecret compares digests so that every comparison has the same
// length, and visits every configured secret so that the time does not
// tell which one (or whether any) matched.
func (h *ResetFee) checkSecret(s string) bool {
	d := sha256.Sum256([]byte(s))
	ok := 0
	for _, want := range h.digests {
		ok |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	return ok == 1 && s != ""
}

func (h *ResetFee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		refuse(w, http.StatusBadRequest, "Request body is too large or unreadable")
		return
	}
	req, msg := decode(body)
	if msg != "" {
		// The secret is checked before anything else is revealed; a body
		// we cannot read at all has none to check.
		if req.SecretKey != "" && !h.checkSecret(req.SecretKey) {
			refuse(w, http.StatusUnauthorized, "Invalid secret key provided")
			return
		}
		refuse(w, http.StatusBadRequest, msg)
		return
	}
	switch {
	case req.SecretKey == "":
		refuse(w, http.StatusUnauthorized, "Missing secret key")
		return
	case !h.checkSecret(req.SecretKey):
		refuse(w, http.StatusUnauthorized, "Invalid secret key provided")
		return
	}
	if msg := validate(req); msg != "" {
		refuse(w, http.StatusBadRequest, msg)
		return
	}
	prod, ok := h.opt.Catalog.Lookup(*req.ProductID)
	if !ok {
		refuse(w, http.StatusBadRequest, fmt.Sprintf("Unknown product_id %d", *req.ProductID))
		return
	}

	ctx := r.Context()
	b := req.BillingDetails
	cust := invoice.Customer{
		Email: strings.TrimSpace(b.Email),
		Name:  strings.TrimSpace(strings.TrimSpace(b.FirstName) + " " + strings.TrimSpace(b.LastName)),
		Phone: strings.TrimSpace(b.Phone),
	}
	if b.Address1 != "" || b.Address2 != "" || b.City != "" || b.Postcode != "" || b.Country != "" {
		cust.Address = &invoice.Address{Line1: b.Address1, Line2: b.Address2, City: b.City, Postcode: b.Postcode, Country: strings.TrimSpace(b.Country)}
	}
	pid := strconv.FormatInt(prod.VariationID, 10)
	created, err := h.opt.Invoices.Create(ctx, ledger.InvoiceRequest{
		Amount:      prod.Price,
		Currency:    prod.Currency,
		Description: prod.Name(),
		Customer:    cust,
		Metadata: map[string]string{
			"account_id": req.AccountID, "product_id": pid,
			"challenge_type": prod.ChallengeType, "account_size": prod.AccountSize,
		},
		Provider:  h.opt.Provider,
		LineItems: []invoice.LineItem{{ProductID: prod.VariationID, VariationID: prod.VariationID, Name: prod.Name(), Quantity: 1, Total: prod.Price}},
	}, "")
	var verrs ledger.ValidationErrors
	if errors.As(err, &verrs) {
		refuse(w, http.StatusBadRequest, validationMessage(verrs))
		return
	}
	if err != nil {
		h.opt.Logger.Error("reset-fee: create invoice", "err", err)
		refuse(w, http.StatusInternalServerError, "Could not create the order, please retry")
		return
	}
	link, err := h.opt.Invoices.IssueLink(ctx, created.State.ID, h.opt.LinkTTL)
	if err != nil {
		h.opt.Logger.Error("reset-fee: issue link", "invoice", created.State.ID, "err", err)
		refuse(w, http.StatusInternalServerError, "Could not create the payment link, please retry")
		return
	}
	reply(w, http.StatusOK, response{Success: true, OrderID: created.State.Number, PaymentURL: h.opt.PublicURL + "/pay/" + link.Token})
}

// decode parses the body; msg is a reason for a 400. Unknown fields are
// tolerated (the caller's platform may add some), wrong types are not.
func decode(body []byte) (Request, string) {
	var req Request
	if len(bytes.TrimSpace(body)) == 0 {
		return req, "Request body is empty; a JSON object is required"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Keep what decoded so far (the secret may be checked).
			return req, fmt.Sprintf("Invalid request body: %s must be %s", te.Field, kind(te.Field))
		}
		return req, "Invalid request body: malformed JSON"
	}
	if dec.More() {
		return req, "Invalid request body: trailing data after the JSON object"
	}
	return req, ""
}

func kind(field string) string {
	switch field {
	case "product_id":
		return "an integer"
	case "billing_details":
		return "an object"
	}
	return "a string"
}

func validate(req Request) string {
	switch {
	case req.ProductID == nil:
		return "product_id is required"
	case req.BillingDetails == nil:
		return "billing_details is required"
	case strings.TrimSpace(req.BillingDetails.Email) == "":
		return "billing_details.email is required"
	case !plausibleEmail(strings.TrimSpace(req.BillingDetails.Email)):
		return "billing_details.email is not a valid email address"
	case strings.TrimSpace(req.AccountID) == "":
		return "account_id is required"
	case len(req.AccountID) > 200:
		return "account_id is too long"
	}
	return ""
}

// plausibleEmail is a quick structural check; the ledger's own validation
// runs after it and has the last word.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n<>") && strings.Contains(s[at+1:], ".")
}

func validationMessage(v ledger.ValidationErrors) string {
	parts := make([]string, 0, len(v))
	for _, e := range v {
		field := strings.NewReplacer("customer.address.", "billing_details.", "customer.email", "billing_details.email",
			"customer.phone", "billing_details.phone", "customer.name", "billing_details.first_name").Replace(e.Field)
		parts = append(parts, field+" "+e.Message)
	}
	return "Invalid request: " + strings.Join(parts, "; ")
}
