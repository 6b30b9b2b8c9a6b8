package outbox

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payledger/payledger/domain/invoice"
	"github.com/payledger/payledger/domain/money"
)

// Order is a WooCommerce REST API v3 order, the body WooCommerce posts for
// order.updated. Integrations written against WooCommerce parse these
// fields, so names and types follow WooCommerce exactly: ids are numbers,
// money is a string with the currency's decimals, dates are
// "YYYY-MM-DDTHH:MM:SS" without a zone (the _gmt ones in UTC).
type Order struct {
	ID                 int64          `json:"id"`
	ParentID           int64          `json:"parent_id"`
	Number             string         `json:"number"`
	OrderKey           string         `json:"order_key"`
	CreatedVia         string         `json:"created_via"`
	Status             string         `json:"status"`
	Currency           string         `json:"currency"`
	DateCreated        string         `json:"date_created"`
	DateCreatedGMT     string         `json:"date_created_gmt"`
	DateModified       string         `json:"date_modified"`
	DateModifiedGMT    string         `json:"date_modified_gmt"`
	DiscountTotal      string         `json:"discount_total"`
	DiscountTax        string         `json:"discount_tax"`
	ShippingTotal      string         `json:"shipping_total"`
	ShippingTax        string         `json:"shipping_tax"`
	CartTax            string         `json:"cart_tax"`
	Total              string         `json:"total"`
	TotalTax           string         `json:"total_tax"`
	PricesIncludeTax   bool           `json:"prices_include_tax"`
	CustomerID         int64          `json:"customer_id"`
	CustomerNote       string         `json:"customer_note"`
	Billing            Address        `json:"billing"`
	Shipping           Address        `json:"shipping"`
	PaymentMethod      string         `json:"payment_method"`
	PaymentMethodTitle string         `json:"payment_method_title"`
	TransactionID      string         `json:"transaction_id"`
	DatePaid           *string        `json:"date_paid"`
	DatePaidGMT        *string        `json:"date_paid_gmt"`
	DateCompleted      *string        `json:"date_completed"`
	DateCompletedGMT   *string        `json:"date_completed_gmt"`
	MetaData           []Meta         `json:"meta_data"`
	LineItems          []OrderLine    `json:"line_items"`
	TaxLines           []struct{}     `json:"tax_lines"`
	ShippingLines      []struct{}     `json:"shipping_lines"`
	FeeLines           []struct{}     `json:"fee_lines"`
	CouponLines        []struct{}     `json:"coupon_lines"`
	Refunds            []OrderRefund  `json:"refunds"`
	Links              map[string]any `json:"_links,omitempty"`
}

// Address is WooCommerce's billing/shipping address.
type Address struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Company   string `json:"company"`
	Address1  string `json:"address_1"`
	Address2  string `json:"address_2"`
	City      string `json:"city"`
	State     string `json:"state"`
	Postcode  string `json:"postcode"`
	Country   string `json:"country"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone"`
}

// Meta is one meta_data entry.
type Meta struct {
	ID    int64  `json:"id"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// OrderLine is one line_items entry.
type OrderLine struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	ProductID   int64      `json:"product_id"`
	VariationID int64      `json:"variation_id"`
	Quantity    int        `json:"quantity"`
	TaxClass    string     `json:"tax_class"`
	Subtotal    string     `json:"subtotal"`
	SubtotalTax string     `json:"subtotal_tax"`
	Total       string     `json:"total"`
	TotalTax    string     `json:"total_tax"`
	Taxes       []struct{} `json:"taxes"`
	MetaData    []Meta     `json:"meta_data"`
	SKU         string     `json:"sku"`
	Price       string     `json:"price"`
}

// OrderRefund is one refunds entry; WooCommerce reports the total as a
// negative amount.
type OrderRefund struct {
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
	Total  string `json:"total"`
}

// WooStatus maps an invoice to the WooCommerce order status of API.md:
// pending (open), failed (open after a declined attempt), processing
// (paid, also partially refunded, as WooCommerce keeps it), cancelled
// (expired or cancelled), refunded (fully refunded).
func WooStatus(s invoice.State) string {
	switch s.Status {
	case invoice.StatusOpen:
		if n := len(s.Payments); n > 0 && s.Payments[n-1].Status == invoice.PaymentStatusFailed {
			return "failed"
		}
		return "pending"
	case invoice.StatusPaid, invoice.StatusPartiallyRefunded:
		return "processing"
	case invoice.StatusRefunded:
		return "refunded"
	default:
		return "cancelled"
	}
}

const wooTime = "2006-01-02T15:04:05"

func wooDate(t time.Time) string { return t.UTC().Format(wooTime) }

// OrderFromState renders the invoice as a WooCommerce order.
func OrderFromState(s invoice.State) Order {
	cur := s.Amount.Currency()
	zero := money.Zero(cur).String()
	o := Order{
		ID:                 s.Number,
		Number:             itoa(s.Number),
		OrderKey:           "wc_order_" + strings.TrimPrefix(s.ID, "inv_"),
		CreatedVia:         "payledger",
		Status:             WooStatus(s),
		Currency:           cur.Code,
		DateCreated:        wooDate(s.CreatedAt),
		DateCreatedGMT:     wooDate(s.CreatedAt),
		DateModified:       wooDate(s.UpdatedAt),
		DateModifiedGMT:    wooDate(s.UpdatedAt),
		DiscountTotal:      zero,
		DiscountTax:        zero,
		ShippingTotal:      zero,
		ShippingTax:        zero,
		CartTax:            zero,
		Total:              s.Amount.String(),
		TotalTax:           zero,
		CustomerNote:       s.Description,
		PaymentMethod:      s.Provider,
		PaymentMethodTitle: s.Provider,
		TaxLines:           []struct{}{},
		ShippingLines:      []struct{}{},
		FeeLines:           []struct{}{},
		CouponLines:        []struct{}{},
		MetaData:           []Meta{},
		LineItems:          []OrderLine{},
		Refunds:            []OrderRefund{},
	}
	first, last, _ := strings.Cut(strings.TrimSpace(s.Customer.Name), " ")
	o.Billing = Address{FirstName: first, LastName: strings.TrimSpace(last), Email: s.Customer.Email, Phone: s.Customer.Phone}
	if a := s.Customer.Address; a != nil {
		o.Billing.Address1, o.Billing.Address2, o.Billing.City, o.Billing.Postcode, o.Billing.Country =
			a.Line1, a.Line2, a.City, a.Postcode, a.Country
	}
	o.Shipping = o.Billing
	o.Shipping.Email = ""
	for _, p := range s.Payments {
		if p.Status == invoice.PaymentStatusProcessed {
			o.TransactionID = p.ProviderRef
			break
		}
	}
	if !s.PaidAt.IsZero() {
		d := wooDate(s.PaidAt)
		o.DatePaid, o.DatePaidGMT = &d, &d
	}
	// meta_data: the merchant's metadata (account_id and the like) in key
	// order, then the ledger's own reference, so ids are stable.
	keys := make([]string, 0, len(s.Metadata))
	for k := range s.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.MetaData = append(o.MetaData, Meta{ID: int64(len(o.MetaData) + 1), Key: k, Value: s.Metadata[k]})
	}
	o.MetaData = append(o.MetaData, Meta{ID: int64(len(o.MetaData) + 1), Key: "_payledger_invoice_id", Value: s.ID})
	if s.ReferenceID != "" {
		o.MetaData = append(o.MetaData, Meta{ID: int64(len(o.MetaData) + 1), Key: "_payledger_reference_id", Value: s.ReferenceID})
	}
	for i, li := range s.LineItems {
		o.LineItems = append(o.LineItems, OrderLine{
			ID: int64(i + 1), Name: li.Name, ProductID: li.ProductID, VariationID: li.VariationID,
			Quantity: li.Quantity, Subtotal: li.Total, SubtotalTax: zero, Total: li.Total, TotalTax: zero,
			Taxes: []struct{}{}, MetaData: []Meta{}, Price: unitPrice(li, cur),
		})
	}
	if len(o.LineItems) == 0 {
		// An invoice created through the native API has no lines; WooCommerce
		// orders always have one, so the invoice itself becomes the line.
		name := s.Description
		if name == "" {
			name = "Invoice " + o.Number
		}
		o.LineItems = append(o.LineItems, OrderLine{
			ID: 1, Name: name, Quantity: 1, Subtotal: o.Total, SubtotalTax: zero, Total: o.Total,
			TotalTax: zero, Taxes: []struct{}{}, MetaData: []Meta{}, Price: o.Total,
		})
	}
	for i, r := range s.Refunds {
		o.Refunds = append(o.Refunds, OrderRefund{ID: int64(i + 1), Reason: r.Reason, Total: "-" + r.Amount.String()})
	}
	return o
}

// unitPrice is total / quantity at the currency's precision (the catalog
// gives totals; WooCommerce also reports the unit price).
func unitPrice(li invoice.LineItem, cur money.Currency) string {
	m, err := money.Parse(li.Total, cur.Code)
	if err != nil || li.Quantity <= 1 {
		return li.Total
	}
	return m.Amount().DivRound(decimal.NewFromInt(int64(li.Quantity)), cur.Exponent).StringFixed(cur.Exponent)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func orderBody(s invoice.State) ([]byte, error) { return json.Marshal(OrderFromState(s)) }
