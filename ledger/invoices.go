package ledger

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

// Numberer hands out invoice numbers (the merchant-facing "order id").
// Numbers are unique and increasing; gaps are allowed (a number drawn for a
// create that then lost a reference_id race is not reused).
type Numberer interface {
	Next(ctx context.Context) (int64, error)
}

// Reserver binds a name to an invoice id, first writer wins, and returns
// the id the name is bound to. Create uses it for reference ids and
// idempotency keys so that invoices keep time-ordered ids.
type Reserver interface {
	Reserve(ctx context.Context, name, invoiceID string) (string, error)
}

// NumberingReserver is a Reserver that can also draw the new invoice's
// number in the round trip that binds the name (adapters/numbers does on
// PostgreSQL). The number is 0 when the call did not bind the name or
// could not draw one; Create then asks its Numberer, as it does for
// invoices created without a name.
type NumberingReserver interface {
	Reserver
	ReserveNumbered(ctx context.Context, name, invoiceID string) (bound string, number int64, err error)
}

// ErrReferenceConflict is returned by Create when an invoice with the same
// reference_id exists but was created from a different request.
var ErrReferenceConflict = errors.New("reference_id already used by a different invoice")

// ValidationErrors lists every refused field of a request, so that a client
// sees all its mistakes at once rather than one per round trip.
type ValidationErrors []*invoice.ValidationError

func (v ValidationErrors) Error() string {
	parts := make([]string, len(v))
	for i, e := range v {
		parts[i] = e.Error()
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Policy holds the bounds the API enforces. The zero value of a field means
// its default (see DefaultPolicy).
type Policy struct {
	DefaultExpiry  time.Duration // invoice lifetime when expires_at is absent (24h)
	MinExpiry      time.Duration // earliest allowed expires_at from now (14 min)
	MaxExpiry      time.Duration // latest allowed expires_at from now (30 days)
	LinkTTLMin     time.Duration // 5 min
	LinkTTLMax     time.Duration // 10 min
	LinkTTLDefault time.Duration // 10 min
	// Providers are the accepted provider names; empty means the built-in
	// list. DefaultProvider is used when a request names none.
	Providers       []string
	DefaultProvider string
}

// DefaultPolicy is the policy of API.md.
func DefaultPolicy() Policy {
	return Policy{
		DefaultExpiry:   24 * time.Hour,
		MinExpiry:       14 * time.Minute,
		MaxExpiry:       30 * 24 * time.Hour,
		LinkTTLMin:      5 * time.Minute,
		LinkTTLMax:      10 * time.Minute,
		LinkTTLDefault:  10 * time.Minute,
		Providers:       []string{"sandbox", "wzrdpay", "payfect", "circoflows", "onramp"},
		DefaultProvider: "sandbox",
	}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.DefaultExpiry == 0 {
		p.DefaultExpiry = d.DefaultExpiry
	}
	if p.MinExpiry == 0 {
		p.MinExpiry = d.MinExpiry
	}
	if p.MaxExpiry == 0 {
		p.MaxExpiry = d.MaxExpiry
	}
	if p.LinkTTLMin == 0 {
		p.LinkTTLMin = d.LinkTTLMin
	}
	if p.LinkTTLMax == 0 {
		p.LinkTTLMax = d.LinkTTLMax
	}
	if p.LinkTTLDefault == 0 {
		p.LinkTTLDefault = min(d.LinkTTLDefault, p.LinkTTLMax)
	}
	if len(p.Providers) == 0 {
		p.Providers = d.Providers
	}
	if p.DefaultProvider == "" {
		p.DefaultProvider = d.DefaultProvider
	}
	return p
}

// Validate reports an inconsistent policy (used by the composition root to
// refuse a bad configuration at startup).
func (p Policy) Validate() error {
	p = p.withDefaults()
	switch {
	case p.LinkTTLMin <= 0 || p.LinkTTLMax < p.LinkTTLMin:
		return fmt.Errorf("link TTL bounds: min %s must be positive and not above max %s", p.LinkTTLMin, p.LinkTTLMax)
	case p.LinkTTLDefault < p.LinkTTLMin || p.LinkTTLDefault > p.LinkTTLMax:
		return fmt.Errorf("link TTL default %s is outside [%s, %s]", p.LinkTTLDefault, p.LinkTTLMin, p.LinkTTLMax)
	case p.MinExpiry <= 0 || p.MaxExpiry < p.MinExpiry:
		return fmt.Errorf("invoice expiry bounds: min %s, max %s", p.MinExpiry, p.MaxExpiry)
	}
	return nil
}

// Invoices is the use-case layer of invoice creation, payment links and
// refunds on top of a Service. Every entry point (native API, reset-fee
// endpoint, CLI) goes through it so the rules cannot drift apart.
type Invoices struct {
	svc     *Service
	numbers Numberer
	refs    Reserver
	policy  Policy
}

// NewInvoices builds the invoice use cases. refs may be nil: ids of
// invoices with a reference or key are then derived by hashing (correct,
// but not time-ordered). policy fields left zero take their defaults.
func NewInvoices(svc *Service, numbers Numberer, refs Reserver, policy Policy) *Invoices {
	return &Invoices{svc: svc, numbers: numbers, refs: refs, policy: policy.withDefaults()}
}

// Service returns the underlying command service.
func (iv *Invoices) Service() *Service { return iv.svc }

// Policy returns the effective policy (defaults filled in).
func (iv *Invoices) Policy() Policy { return iv.policy }

// InvoiceRequest is a create request in the API's terms (amounts as decimal
// strings). Zero ExpiresAt means "the default lifetime from now".
type InvoiceRequest struct {
	Amount      string
	Currency    string
	ReferenceID string
	Description string
	Customer    invoice.Customer
	Metadata    map[string]string
	Provider    string
	LineItems   []invoice.LineItem
	ReturnURLs  invoice.ReturnURLs
	ExpiresAt   time.Time
}

// CreateResult is what Create did.
type CreateResult struct {
	Result
	// Existing is true when an invoice with the same reference_id and the
	// same content already existed and was returned unchanged (HTTP 200).
	Existing bool
}

// invoiceID returns the id Create uses for a request: the one bound to the
// reference_id when there is one (so that concurrent creates of the same
// reference land on one stream and the store's NoStream check picks one
// winner), else the one bound to the idempotency key (so that a retry
// after a crash lands on the same invoice), else a fresh time-ordered id.
// number is the invoice's number when the reservation drew it (see
// NumberingReserver), else 0.
func (iv *Invoices) invoiceID(ctx context.Context, referenceID, idempotencyKey string) (id string, fresh bool, number int64, err error) {
	name := ""
	switch {
	case referenceID != "":
		name = "ref:" + referenceID
	case idempotencyKey != "":
		name = "key:" + idempotencyKey
	default:
		return NewID("inv"), true, 0, nil
	}
	if iv.refs == nil {
		return DerivedID("inv", name), false, 0, nil
	}
	minted := NewID("inv")
	var bound string
	if nr, ok := iv.refs.(NumberingReserver); ok {
		bound, number, err = nr.ReserveNumbered(ctx, name, minted)
	} else {
		bound, err = iv.refs.Reserve(ctx, name, minted)
	}
	// Bound to the id minted just now: no invoice can have it yet.
	return bound, bound == minted, number, err
}

// assumeFresh marks a command whose invoice id was minted for it.
func assumeFresh(o *options) { o.fresh = true }

// Create validates req, allocates a number and appends invoice.created.
// idempotencyKey may be empty; when set, a repeat of the same call returns
// the first call's result (Replayed). Errors: ValidationErrors (nothing
// written), ErrReferenceConflict, store errors.
func (iv *Invoices) Create(ctx context.Context, req InvoiceRequest, idempotencyKey string) (CreateResult, error) {
	now := iv.svc.Now()
	cmd, err := iv.validate(req, now)
	if err != nil {
		return CreateResult{}, err
	}
	var fresh bool
	var number int64
	if cmd.InvoiceID, fresh, number, err = iv.invoiceID(ctx, cmd.ReferenceID, idempotencyKey); err != nil {
		return CreateResult{}, err
	}

	var opts []Option
	if idempotencyKey != "" {
		opts = append(opts, Idempotent(idempotencyKey))
	}
	// Only draw a number for an invoice that does not exist yet: repeats of
	// a reference or a key would otherwise burn numbers. A freshly minted
	// id needs no look: nothing can be stored under it.
	exists := false
	if fresh {
		opts = append(opts, assumeFresh)
	} else {
		existing, err := iv.svc.Load(ctx, cmd.InvoiceID)
		switch {
		case err == nil:
			cmd.Number, exists = existing.Number, true
		case !errors.Is(err, invoice.ErrNotFound):
			return CreateResult{}, err
		}
	}
	switch {
	case exists:
	case number > 0:
		cmd.Number = number // drawn with the reservation
	default:
		if cmd.Number, err = iv.numbers.Next(ctx); err != nil {
			return CreateResult{}, fmt.Errorf("ledger: allocate invoice number: %w", err)
		}
	}

	res, err := iv.svc.Execute(ctx, cmd.InvoiceID, cmd, opts...)
	if errors.Is(err, invoice.ErrAlreadyExists) && cmd.ReferenceID != "" {
		if !sameInvoice(res.State, cmd, req.ExpiresAt.IsZero()) {
			return CreateResult{}, fmt.Errorf("%w: %s is invoice %s", ErrReferenceConflict, cmd.ReferenceID, res.State.ID)
		}
		return CreateResult{Result: Result{State: res.State}, Existing: true}, nil
	}
	if err != nil {
		return CreateResult{}, err
	}
	return CreateResult{Result: res}, nil
}

// sameInvoice decides whether a repeated create with the same reference_id
// asks for the invoice that exists. The default expiry is relative to the
// time of each request, so it only counts when the client set one.
func sameInvoice(st invoice.State, cmd invoice.Create, defaultExpiry bool) bool {
	if !st.Amount.Equal(cmd.Amount) ||
		st.Description != cmd.Description ||
		st.Provider != cmd.Provider ||
		!reflect.DeepEqual(st.Customer, cmd.Customer) ||
		st.ReturnURLs != cmd.ReturnURLs ||
		!equalMaps(st.Metadata, cmd.Metadata) ||
		len(st.LineItems) != len(cmd.LineItems) {
		return false
	}
	for i := range st.LineItems {
		if st.LineItems[i] != cmd.LineItems[i] {
			return false
		}
	}
	return defaultExpiry || st.ExpiresAt.Equal(cmd.ExpiresAt)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Limits on free-text fields keep one invoice's events small.
const (
	maxReferenceLen   = 200
	maxDescriptionLen = 1000
	maxNameLen        = 200
	maxMetadataKeys   = 50
	maxMetadataKeyLen = 40
	maxMetadataValLen = 500
	maxURLLen         = 2048
	maxLineItems      = 100
)

func (iv *Invoices) validate(req InvoiceRequest, now time.Time) (invoice.Create, error) {
	var errs ValidationErrors
	bad := func(field, format string, args ...any) {
		errs = append(errs, &invoice.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	cmd := invoice.Create{
		ReferenceID: req.ReferenceID,
		Description: req.Description,
		Customer:    req.Customer,
		Metadata:    req.Metadata,
		Provider:    strings.ToLower(strings.TrimSpace(req.Provider)),
		LineItems:   req.LineItems,
		ReturnURLs:  req.ReturnURLs,
	}

	var cur money.Currency
	curOK := false
	switch {
	case req.Currency == "":
		bad("currency", "is required")
	case strings.TrimSpace(req.Currency) != req.Currency || len(req.Currency) > 5:
		bad("currency", "%q is not a currency code", req.Currency)
	default:
		c, err := money.LookupCurrency(req.Currency)
		if err != nil {
			bad("currency", "%q is not a supported currency code", req.Currency)
		} else {
			cur, curOK = c, true
		}
	}
	switch {
	case req.Amount == "":
		bad("amount", "is required (a decimal string such as \"100.55\")")
	case curOK:
		m, err := money.Parse(req.Amount, cur.Code)
		switch {
		case errors.Is(err, money.ErrNegative):
			bad("amount", "must not be negative")
		case errors.Is(err, money.ErrTooPrecise):
			bad("amount", "has more than %d decimals for %s", cur.Exponent, cur.Code)
		case errors.Is(err, money.ErrTooLarge):
			bad("amount", "is too large")
		case err != nil:
			bad("amount", "must be a decimal string such as \"100.55\"")
		case m.IsZero():
			bad("amount", "must be greater than zero")
		default:
			cmd.Amount = m
		}
	}

	if req.ReferenceID != "" && (len(req.ReferenceID) > maxReferenceLen || !printable(req.ReferenceID)) {
		bad("reference_id", "must be at most %d printable characters", maxReferenceLen)
	}
	if len(req.Description) > maxDescriptionLen || !utf8.ValidString(req.Description) {
		bad("description", "must be at most %d characters", maxDescriptionLen)
	}

	if cmd.Provider == "" {
		cmd.Provider = iv.policy.DefaultProvider
	}
	if !contains(iv.policy.Providers, cmd.Provider) {
		bad("provider", "must be one of %s", strings.Join(iv.policy.Providers, ", "))
	}

	validateCustomer(&cmd.Customer, bad)

	if len(req.Metadata) > maxMetadataKeys {
		bad("metadata", "at most %d keys", maxMetadataKeys)
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > maxMetadataKeyLen || !printable(k) {
			bad("metadata", "key %q must be 1 to %d printable characters", truncate(k, 60), maxMetadataKeyLen)
		}
		if len(v) > maxMetadataValLen || !utf8.ValidString(v) {
			bad("metadata["+truncate(k, 60)+"]", "must be at most %d characters", maxMetadataValLen)
		}
	}

	if len(req.LineItems) > maxLineItems {
		bad("line_items", "at most %d items", maxLineItems)
	}
	for i, li := range req.LineItems {
		if li.Name == "" || li.Quantity <= 0 {
			bad(fmt.Sprintf("line_items[%d]", i), "needs a name and a positive quantity")
		}
		if curOK && li.Total != "" {
			if _, err := money.Parse(li.Total, cur.Code); err != nil {
				bad(fmt.Sprintf("line_items[%d].total", i), "must be a decimal string in %s", cur.Code)
			}
		}
	}

	for field, u := range map[string]string{"return_urls.success": req.ReturnURLs.Success, "return_urls.fail": req.ReturnURLs.Fail} {
		if u != "" && !absoluteHTTPURL(u) {
			bad(field, "must be an absolute http or https URL")
		}
	}

	if req.ExpiresAt.IsZero() {
		cmd.ExpiresAt = now.Add(iv.policy.DefaultExpiry).UTC()
	} else {
		d := req.ExpiresAt.Sub(now)
		switch {
		case d < iv.policy.MinExpiry:
			bad("expires_at", "must be at least %s in the future", human(iv.policy.MinExpiry))
		case d > iv.policy.MaxExpiry:
			bad("expires_at", "must be at most %s in the future", human(iv.policy.MaxExpiry))
		default:
			cmd.ExpiresAt = req.ExpiresAt.UTC()
		}
	}

	if len(errs) > 0 {
		return invoice.Create{}, errs
	}
	return cmd, nil
}

func validateCustomer(c *invoice.Customer, bad func(field, format string, args ...any)) {
	if c.Email != "" {
		if !validEmail(c.Email) {
			bad("customer.email", "is not a valid email address")
		}
	}
	if len(c.Name) > maxNameLen || !utf8.ValidString(c.Name) {
		bad("customer.name", "must be at most %d characters", maxNameLen)
	}
	if c.Phone != "" && !validPhone(c.Phone) {
		bad("customer.phone", "must be digits with an optional leading +, spaces, dashes or parentheses")
	}
	if a := c.Address; a != nil {
		for field, v := range map[string]string{"line1": a.Line1, "line2": a.Line2, "city": a.City, "postcode": a.Postcode} {
			if len(v) > maxNameLen || !utf8.ValidString(v) {
				bad("customer.address."+field, "must be at most %d characters", maxNameLen)
			}
		}
		if a.Country != "" {
			up := strings.ToUpper(a.Country)
			if len(up) != 2 || up[0] < 'A' || up[0] > 'Z' || up[1] < 'A' || up[1] > 'Z' {
				bad("customer.address.country", "must be a two-letter ISO 3166 country code")
			} else {
				cp := *a
				cp.Country = up
				c.Address = &cp
			}
		}
	}
}

func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".") && !strings.HasSuffix(s, ".")
}

func validPhone(s string) bool {
	if len(s) > 32 {
		return false
	}
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return false
		}
	}
	return digits >= 4 && digits <= 20
}

func absoluteHTTPURL(s string) bool {
	if len(s) > maxURLLen {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func human(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	default:
		return d.String()
	}
}

// IssuedLink is a freshly issued one-time payment link. Token is the only
// copy of the secret: it is not stored anywhere and cannot be shown again.
type IssuedLink struct {
	ID        string
	InvoiceID string
	Token     string
	ExpiresAt time.Time
	Result    Result
}

// TokenHash is how a link token is stored and looked up: hex SHA-256.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns 256 bits from the CSPRNG, base64url without padding.
func NewToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; a token from a
		// broken generator must never be handed out.
		panic("ledger: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// IssueLink issues a one-time payment link for an open invoice; an earlier
// unused link is revoked by the domain. ttl 0 means the policy's default;
// a ttl outside the policy's bounds is a ValidationErrors on "ttl_seconds".
//
// It deliberately takes no idempotency key: the token exists only in this
// call's memory, so a replay could not return it. A retried request gets a
// fresh link, which revokes the one whose response was lost.
func (iv *Invoices) IssueLink(ctx context.Context, invoiceID string, ttl time.Duration) (IssuedLink, error) {
	if ttl == 0 {
		ttl = iv.policy.LinkTTLDefault
	}
	if ttl < iv.policy.LinkTTLMin || ttl > iv.policy.LinkTTLMax {
		return IssuedLink{}, ValidationErrors{{Field: "ttl_seconds", Message: fmt.Sprintf("must be between %d and %d seconds",
			int(iv.policy.LinkTTLMin/time.Second), int(iv.policy.LinkTTLMax/time.Second))}}
	}
	token := NewToken()
	link := IssuedLink{
		ID:        NewID("lnk"),
		InvoiceID: invoiceID,
		Token:     token,
		ExpiresAt: iv.svc.Now().Add(ttl).UTC().Truncate(time.Second),
	}
	res, err := iv.svc.Execute(ctx, invoiceID, invoice.IssueLink{LinkID: link.ID, TokenHash: TokenHash(token), ExpiresAt: link.ExpiresAt})
	if err != nil {
		return IssuedLink{}, err
	}
	link.Result = res
	// The domain clamps a link's expiry to the invoice's: report the expiry
	// it decided, not the one asked for, or the client would be promised a
	// link that dies earlier than it says.
	for _, e := range res.Events {
		if li, ok := e.(invoice.LinkIssued); ok && li.LinkID == link.ID {
			link.ExpiresAt = li.ExpiresAt
		}
	}
	return link, nil
}

// RefundRequest asks for money back on a paid invoice. Empty Amount means
// everything that is still refundable.
type RefundRequest struct {
	InvoiceID string
	Amount    string
	Reason    string
}

// RefundResult is the refund as recorded plus the command's result.
type RefundResult struct {
	Refund invoice.RefundRecord
	Result Result
}

// conflictRounds bounds how often Refund re-runs a command that exhausted
// the Service's own retries: many refunds racing on one invoice are
// legitimate (each must be decided on the latest total), and each round
// backs off a little so the racers spread out.
const conflictRounds = 6

// Refund validates and records a refund. Errors: ValidationErrors,
// invoice.ErrNotFound, invoice.ErrNotPaid, invoice.ErrRefundExceedsPayment.
func (iv *Invoices) Refund(ctx context.Context, req RefundRequest, idempotencyKey string) (RefundResult, error) {
	var errs ValidationErrors
	if req.InvoiceID == "" {
		errs = append(errs, &invoice.ValidationError{Field: "invoice_id", Message: "is required"})
	}
	if len(req.Reason) > maxMetadataValLen || !utf8.ValidString(req.Reason) {
		errs = append(errs, &invoice.ValidationError{Field: "reason", Message: fmt.Sprintf("must be at most %d characters", maxMetadataValLen)})
	}
	if len(errs) > 0 {
		return RefundResult{}, errs
	}
	st, err := iv.svc.Load(ctx, req.InvoiceID)
	if err != nil {
		return RefundResult{}, err
	}
	var amount money.Money
	if req.Amount == "" {
		amount, err = st.AmountPaid.Sub(st.AmountRefunded)
		if err != nil || amount.IsZero() {
			return RefundResult{}, fmt.Errorf("%w: nothing left to refund on %s", invoice.ErrRefundExceedsPayment, st.ID)
		}
	} else {
		amount, err = money.Parse(req.Amount, st.Amount.Currency().Code)
		msg := ""
		switch {
		case errors.Is(err, money.ErrNegative):
			msg = "must not be negative"
		case errors.Is(err, money.ErrTooPrecise):
			msg = fmt.Sprintf("has more than %d decimals for %s", st.Amount.Currency().Exponent, st.Amount.Currency().Code)
		case err != nil:
			msg = "must be a decimal string such as \"20.00\""
		case amount.IsZero():
			msg = "must be greater than zero"
		}
		if msg != "" {
			return RefundResult{}, ValidationErrors{{Field: "amount", Message: msg}}
		}
	}
	refundID := NewID("re")
	var opts []Option
	if idempotencyKey != "" {
		refundID = DerivedID("re", idempotencyKey)
		opts = append(opts, Idempotent(idempotencyKey))
	}
	cmd := invoice.Refund{RefundID: refundID, Amount: amount, Reason: req.Reason}
	var res Result
	for round := 0; ; round++ {
		res, err = iv.svc.Execute(ctx, req.InvoiceID, cmd, opts...)
		if !errors.Is(err, ErrConflict) || round == conflictRounds-1 {
			break
		}
		if err := backoff(ctx, round); err != nil {
			return RefundResult{}, err
		}
	}
	if errors.Is(err, invoice.ErrNotPaid) && !res.State.AmountPaid.IsZero() {
		// Money was paid and all of it is refunded: to the client this is
		// a refund above the amount paid, not an unpaid invoice.
		return RefundResult{}, fmt.Errorf("%w: nothing left to refund on %s (%s paid, %s refunded)",
			invoice.ErrRefundExceedsPayment, req.InvoiceID, res.State.AmountPaid, res.State.AmountRefunded)
	}
	if err != nil {
		return RefundResult{}, err
	}
	for _, r := range res.State.Refunds {
		if r.ID == refundID {
			return RefundResult{Refund: r, Result: res}, nil
		}
	}
	return RefundResult{}, fmt.Errorf("ledger: refund %s not found on %s after append", refundID, req.InvoiceID)
}

// backoff waits a random 1..(4<<round) ms so that racing commands do not
// collide again in lockstep.
func backoff(ctx context.Context, round int) error {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(4<<round)))
	t := time.NewTimer(time.Duration(n.Int64()+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
