package woocommerce

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/payledger/payledger/domain/money"
)

// Product is one variation of the reset-fee product.
type Product struct {
	VariationID   int64  `json:"variation_id"`
	ChallengeType string `json:"challenge_type"`
	AccountSize   string `json:"account_size"`
	Price         string `json:"price"`
	Currency      string `json:"currency"`
	price         money.Money
}

// Name is the line-item name, e.g. "Account Reset Fee - 1 Step $100,000".
func (p Product) Name() string {
	return "Account Reset Fee - " + p.ChallengeType + " " + formatSize(p.AccountSize)
}

func formatSize(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return s
	}
	d := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return "$" + b.String()
}

// Catalog maps variation ids to products.
type Catalog struct {
	byID map[int64]Product
}

// Lookup returns the product of a variation id.
func (c *Catalog) Lookup(id int64) (Product, bool) {
	p, ok := c.byID[id]
	return p, ok
}

// Len is the number of products.
func (c *Catalog) Len() int { return len(c.byID) }

// LoadCatalog reads a catalog file.
func LoadCatalog(path string) (*Catalog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	return ParseCatalog(f)
}

// ParseCatalog reads a catalog: a JSON array of products with unique,
// positive variation ids and prices valid in their currency. A bad catalog
// is refused whole, so that startup fails instead of a payer being charged
// a wrong price.
func ParseCatalog(r io.Reader) (*Catalog, error) {
	dec := json.NewDecoder(io.LimitReader(r, 4<<20))
	dec.DisallowUnknownFields()
	var list []Product
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("catalog: no products")
	}
	c := &Catalog{byID: make(map[int64]Product, len(list))}
	for i, p := range list {
		if p.VariationID <= 0 {
			return nil, fmt.Errorf("catalog: entry %d: variation_id must be a positive integer", i)
		}
		if _, dup := c.byID[p.VariationID]; dup {
			return nil, fmt.Errorf("catalog: variation_id %d appears twice", p.VariationID)
		}
		if p.ChallengeType == "" || p.AccountSize == "" {
			return nil, fmt.Errorf("catalog: variation %d: challenge_type and account_size are required", p.VariationID)
		}
		cur, err := money.LookupCurrency(strings.ToUpper(p.Currency))
		if err != nil {
			return nil, fmt.Errorf("catalog: variation %d: currency %q: %w", p.VariationID, p.Currency, err)
		}
		m, err := money.Parse(p.Price, cur.Code)
		if err != nil || m.IsZero() {
			return nil, fmt.Errorf("catalog: variation %d: price %q is not a positive amount in %s", p.VariationID, p.Price, cur.Code)
		}
		p.Currency, p.price, p.Price = cur.Code, m, m.String()
		c.byID[p.VariationID] = p
	}
	return c, nil
}
